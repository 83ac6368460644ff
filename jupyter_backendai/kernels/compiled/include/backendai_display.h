/* SPDX-License-Identifier: LGPL-3.0-or-later */
/* Rich output from C and C++ cells of the Backend.AI kernels (included in every build).
 *
 *   display_html("<b>hi</b>");  display_svg(svg_text);
 *   display_png(bytes, size);   display_png_file("plot.png");
 *   display_data("image/jpeg", bytes, size);   display_file("image/jpeg", "photo.jpg");
 *
 * Protocol: the marker ESC ] 5150;bai-display;N BEL goes to stdout, in the program's own output
 * stream (so the display keeps its place among the printed lines), then a record
 * "BAI1 N MIME SIZE\n" followed by SIZE raw bytes goes to the file descriptor named in
 * BACKENDAI_DISPLAY_FD, which the driver turns into a display_data message.
 * Outside the kernel (no BACKENDAI_DISPLAY_FD) the functions do nothing and return -1. */
#ifndef BACKENDAI_DISPLAY_H
#define BACKENDAI_DISPLAY_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if !defined(__cplusplus) && defined(__STRICT_ANSI__)
FILE *fdopen(int, const char *);
#endif

static inline FILE *backendai__display_channel(void) {
    static FILE *channel;
    static int opened;
    if (!opened) {
        const char *fd = getenv("BACKENDAI_DISPLAY_FD");
        opened = 1;
        if (fd && *fd) channel = fdopen(atoi(fd), "w");
    }
    return channel;
}

/* Show SIZE bytes of DATA as MIME (image/png, image/svg+xml, text/html, ...). */
static inline int display_data(const char *mime, const void *data, size_t size) {
    static unsigned long sequence;
    FILE *channel = backendai__display_channel();
    if (!channel) return -1;
    unsigned long n = ++sequence;
    fflush(stdout);
    printf("\033]5150;bai-display;%lu\007", n);
    fflush(stdout);
    fprintf(channel, "BAI1 %lu %s %lu\n", n, mime, (unsigned long)size);
    if (size) fwrite(data, 1, size, channel);
    return fflush(channel) == 0 ? 0 : -1;
}

static inline int display_html(const char *html) { return display_data("text/html", html, strlen(html)); }
static inline int display_svg(const char *svg) { return display_data("image/svg+xml", svg, strlen(svg)); }
static inline int display_markdown(const char *md) { return display_data("text/markdown", md, strlen(md)); }
static inline int display_png(const void *png, size_t size) { return display_data("image/png", png, size); }

/* Show the contents of the file at PATH as MIME. */
static inline int display_file(const char *mime, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t cap = 1 << 16, size = 0, got;
    char *buf = (char *)malloc(cap);
    while (buf && (got = fread(buf + size, 1, cap - size, f)) > 0) {
        size += got;
        if (size == cap) {
            char *bigger = (char *)realloc(buf, cap *= 2);
            if (!bigger) { free(buf); buf = NULL; }
            buf = bigger;
        }
    }
    fclose(f);
    if (!buf) return -1;
    int r = display_data(mime, buf, size);
    free(buf);
    return r;
}

static inline int display_png_file(const char *path) { return display_file("image/png", path); }
static inline int display_svg_file(const char *path) { return display_file("image/svg+xml", path); }

#endif
