// SPDX-License-Identifier: LGPL-3.0-or-later
//! Rich output in a Backend.AI notebook: `bai::display_svg(svg)`, `bai::display_png(&bytes)`,
//! `bai::display_html(html)`, `bai::display(mime, data)`.
//!
//! A display is a framed JSON message (4-byte big-endian length + UTF-8 JSON) on the kernel
//! driver's event fd; a marker written to stdout first lets the kernel put it at its place
//! among the program's printed lines.

use std::fs::File;
use std::io::Write;
use std::os::unix::io::FromRawFd;
use std::sync::Mutex;

static SEQ: Mutex<u64> = Mutex::new(0);

fn channel_fd() -> Option<i32> {
    for name in ["BACKENDAI_DISPLAY_FD", "BACKENDAI_DRIVER_EVENT_FD"] {
        if let Some(fd) = std::env::var(name).ok().and_then(|v| v.parse::<i32>().ok()) {
            if fd > 2 {
                return Some(fd);
            }
        }
    }
    None
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity((data.len() + 2) / 3 * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Sends a frame; with `sync`, after writing its marker to stdout (flushed first, so the display
/// lands after what the program printed before it).
fn send(body: &str, sync: Option<u64>) {
    let fd = match channel_fd() {
        Some(fd) => fd,
        None => {
            eprintln!("bai: no display channel (not running in a Backend.AI kernel)");
            return;
        }
    };
    if let Some(n) = sync {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.flush();
        let _ = write!(stdout, "\x1b]5150;bai-display;{}\x07", n);
        let _ = stdout.flush();
    }
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(body.as_bytes());
    // Borrow the fd without closing it when the File goes away.
    let mut f = unsafe { File::from_raw_fd(fd) };
    let _ = f.write_all(&frame);
    std::mem::forget(f);
}

/// Shows one output with several representations (MIME type, text; binary ones already
/// base64-encoded).
pub fn display_bundle(bundle: &[(&str, &str)]) {
    let mut seq = SEQ.lock().unwrap_or_else(|e| e.into_inner());
    *seq += 1;
    let fields: Vec<String> = bundle.iter().map(|(m, t)| format!("{}:{}", json_string(m), json_string(t))).collect();
    let body = format!("{{\"type\":\"display\",\"data\":{{{}}},\"metadata\":{{}},\"sync\":{}}}", fields.join(","), *seq);
    send(&body, Some(*seq));
}

/// Shows data under a MIME type; binary types (image/png, image/jpeg) are raw bytes.
pub fn display<D: AsRef<[u8]>>(mime: &str, data: D) {
    let data = data.as_ref();
    if mime.starts_with("image/") && mime != "image/svg+xml" {
        display_bundle(&[(mime, &base64(data))]);
    } else {
        display_bundle(&[(mime, &String::from_utf8_lossy(data))]);
    }
}

/// Shows an SVG document.
pub fn display_svg(svg: &str) {
    display("image/svg+xml", svg)
}

/// Shows a PNG image given as its bytes.
pub fn display_png(png: &[u8]) {
    display("image/png", png)
}

/// Shows an HTML fragment.
pub fn display_html(html: &str) {
    display("text/html", html)
}

/// The value of a cell's trailing expression (called by the generated main, not by users).
#[doc(hidden)]
pub fn __result(text: &str) {
    send(&format!("{{\"type\":\"result\",\"data\":{{\"text/plain\":{}}}}}", json_string(text)), None);
}
