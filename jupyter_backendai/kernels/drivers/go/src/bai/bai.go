// SPDX-License-Identifier: LGPL-3.0-or-later

// Package bai shows rich output in a Backend.AI notebook: bai.DisplaySVG(svg),
// bai.DisplayPNG(pngBytes), bai.DisplayHTML(html), bai.Display(mime, data),
// bai.DisplayFile(mime, path).
//
// Protocol (the compile-and-run engine's): the marker ESC ] 5150;bai-display;N BEL goes to
// stdout, in the program's own output (so the display keeps its place among printed lines),
// then a record "BAI1 N MIME SIZE\n" and SIZE raw bytes go to the file descriptor named in
// BACKENDAI_DISPLAY_FD. Outside the kernel the functions do nothing and return an error.
package bai

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
)

var (
	mu      sync.Mutex
	seq     int
	channel *os.File
	opened  bool
)

// ErrNoChannel: the program does not run in a Backend.AI kernel.
var ErrNoChannel = errors.New("bai: no display channel (not running in a Backend.AI kernel)")

func displayChannel() *os.File {
	if !opened {
		opened = true
		if fd, err := strconv.Atoi(os.Getenv("BACKENDAI_DISPLAY_FD")); err == nil && fd > 2 {
			channel = os.NewFile(uintptr(fd), "backendai-display")
		}
	}
	return channel
}

// Display shows data (a []byte or a string) as MIME: image/png, image/svg+xml, text/html, ...
func Display(mime string, data interface{}) error {
	var body []byte
	switch v := data.(type) {
	case []byte:
		body = v
	case string:
		body = []byte(v)
	default:
		body = []byte(fmt.Sprint(v))
	}
	mu.Lock()
	defer mu.Unlock()
	ch := displayChannel()
	if ch == nil {
		return ErrNoChannel
	}
	seq++
	if _, err := fmt.Fprintf(os.Stdout, "\x1b]5150;bai-display;%d\x07", seq); err != nil {
		return err
	}
	record := append([]byte(fmt.Sprintf("BAI1 %d %s %d\n", seq, mime, len(body))), body...)
	_, err := ch.Write(record)
	return err
}

// DisplayFile shows the contents of the file at path as MIME.
func DisplayFile(mime, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return Display(mime, data)
}

// DisplaySVG shows an SVG document.
func DisplaySVG(svg string) error { return Display("image/svg+xml", svg) }

// DisplayPNG shows a PNG image given as its bytes.
func DisplayPNG(png []byte) error { return Display("image/png", png) }

// DisplayHTML shows an HTML fragment.
func DisplayHTML(html string) error { return Display("text/html", html) }

// DisplayMarkdown shows Markdown text.
func DisplayMarkdown(md string) error { return Display("text/markdown", md) }
