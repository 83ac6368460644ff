// SPDX-License-Identifier: LGPL-3.0-or-later

// Package bai shows rich output in a Backend.AI notebook: bai.DisplaySVG(svg),
// bai.DisplayPNG(pngBytes), bai.DisplayHTML(html), bai.Display(mime, data).
//
// A display is a framed JSON message (4-byte big-endian length + UTF-8 JSON) on the kernel
// driver's event fd; a marker written to stdout first lets the kernel put it at its place
// among the program's printed lines.
package bai

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
)

var (
	mu    sync.Mutex
	seq   int
	event *os.File
)

func channel() *os.File {
	if event == nil {
		for _, name := range []string{"BACKENDAI_DISPLAY_FD", "BACKENDAI_DRIVER_EVENT_FD"} {
			if fd, err := strconv.Atoi(os.Getenv(name)); err == nil && fd > 2 {
				event = os.NewFile(uintptr(fd), "backendai-events")
				break
			}
		}
	}
	return event
}

// Display shows data under a MIME type; binary types (image/png, image/jpeg) are given as
// raw bytes (a []byte or a string) and sent base64-encoded.
func Display(mime string, data interface{}) {
	var text string
	switch v := data.(type) {
	case []byte:
		text = string(v)
	case string:
		text = v
	default:
		text = fmt.Sprint(v)
	}
	if strings.HasPrefix(mime, "image/") && mime != "image/svg+xml" {
		text = base64.StdEncoding.EncodeToString([]byte(text))
	}
	DisplayBundle(map[string]string{mime: text})
}

// DisplayBundle shows one output with several representations (MIME type -> text; binary
// ones already base64-encoded).
func DisplayBundle(bundle map[string]string) {
	mu.Lock()
	defer mu.Unlock()
	ch := channel()
	if ch == nil {
		fmt.Fprintln(os.Stderr, "bai: no display channel (not running in a Backend.AI kernel)")
		return
	}
	seq++
	body, err := json.Marshal(map[string]interface{}{
		"type": "display", "data": bundle, "metadata": map[string]interface{}{}, "sync": seq})
	if err != nil {
		fmt.Fprintln(os.Stderr, "bai:", err)
		return
	}
	os.Stdout.WriteString(fmt.Sprintf("\x1b]5150;bai-display;%d\x07", seq))
	frame := make([]byte, 4+len(body))
	binary.BigEndian.PutUint32(frame, uint32(len(body)))
	copy(frame[4:], body)
	ch.Write(frame)
}

// DisplaySVG shows an SVG document.
func DisplaySVG(svg string) { Display("image/svg+xml", svg) }

// DisplayPNG shows a PNG image given as its bytes.
func DisplayPNG(png []byte) { Display("image/png", png) }

// DisplayHTML shows an HTML fragment.
func DisplayHTML(html string) { Display("text/html", html) }
