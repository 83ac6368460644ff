// SPDX-License-Identifier: LGPL-3.0-or-later
//! Rich output in a Backend.AI notebook: `bai::display_svg(svg)`, `bai::display_png(&bytes)`,
//! `bai::display_html(html)`, `bai::display(mime, data)`, `bai::display_file(mime, path)`.
//!
//! Protocol (the compile-and-run engine's): the marker ESC ] 5150;bai-display;N BEL goes to
//! stdout, in the program's own output (so the display keeps its place among printed lines),
//! then a record "BAI1 N MIME SIZE\n" and SIZE raw bytes go to the file descriptor named in
//! BACKENDAI_DISPLAY_FD. Outside the kernel the functions do nothing and return false.

use std::fs::File;
use std::io::Write;
use std::os::unix::io::FromRawFd;
use std::sync::Mutex;

static SEQ: Mutex<u64> = Mutex::new(0);

fn channel_fd() -> Option<i32> {
    let fd = std::env::var("BACKENDAI_DISPLAY_FD").ok()?.parse::<i32>().ok()?;
    if fd > 2 {
        Some(fd)
    } else {
        None
    }
}

/// Writes one record; with a sequence number, after its marker on stdout (flushed first, so
/// the display lands after what the program printed before it).
fn record(n: u64, mime: &str, data: &[u8], marker: bool) -> bool {
    let fd = match channel_fd() {
        Some(fd) => fd,
        None => return false,
    };
    if marker {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.flush();
        let _ = write!(stdout, "\x1b]5150;bai-display;{}\x07", n);
        let _ = stdout.flush();
    }
    let mut rec = format!("BAI1 {} {} {}\n", n, mime, data.len()).into_bytes();
    rec.extend_from_slice(data);
    // Borrow the fd without closing it when the File goes away.
    let mut f = unsafe { File::from_raw_fd(fd) };
    let ok = f.write_all(&rec).is_ok();
    std::mem::forget(f);
    ok
}

/// Shows data (bytes or text) as MIME: image/png, image/svg+xml, text/html, ...
pub fn display<D: AsRef<[u8]>>(mime: &str, data: D) -> bool {
    let mut seq = SEQ.lock().unwrap_or_else(|e| e.into_inner());
    *seq += 1;
    record(*seq, mime, data.as_ref(), true)
}

/// Shows the contents of the file at `path` as MIME.
pub fn display_file(mime: &str, path: &str) -> bool {
    match std::fs::read(path) {
        Ok(data) => display(mime, data),
        Err(_) => false,
    }
}

/// Shows an SVG document.
pub fn display_svg(svg: &str) -> bool {
    display("image/svg+xml", svg)
}

/// Shows a PNG image given as its bytes.
pub fn display_png(png: &[u8]) -> bool {
    display("image/png", png)
}

/// Shows an HTML fragment.
pub fn display_html(html: &str) -> bool {
    display("text/html", html)
}

/// Shows Markdown text.
pub fn display_markdown(md: &str) -> bool {
    display("text/markdown", md)
}

/// The value of a cell's trailing expression (called by the generated main, not by users).
#[doc(hidden)]
pub fn __result(text: &str) {
    record(0, "application/x-backendai-result", text.as_bytes(), false);
}

/// Panics name the cell's lines, not the generated program's: `segments` are (program line,
/// source name, its line) where each piece of the program starts ("" for generated lines).
#[doc(hidden)]
pub fn __line_map(segments: &'static [(u32, &'static str, u32)]) {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let at = info.location().filter(|l| l.file().ends_with("cell.rs")).and_then(|l| {
            let seg = segments.iter().rev().find(|s| s.0 <= l.line())?;
            if seg.1.is_empty() {
                return None;
            }
            Some(format!("{}:{}:{}", seg.1, seg.2 + (l.line() - seg.0), l.column()))
        });
        let at = match at {
            Some(at) => at,
            None => return default_hook(info),
        };
        let payload = info.payload();
        let msg = payload.downcast_ref::<&str>().copied()
            .or_else(|| payload.downcast_ref::<String>().map(|s| s.as_str()))
            .unwrap_or("Box<dyn Any>");
        let thread = std::thread::current();
        eprintln!("thread '{}' panicked at '{}', {}", thread.name().unwrap_or("<unnamed>"), msg, at);
    }));
}
