# SPDX-License-Identifier: LGPL-3.0-or-later
"""Compile-and-run languages (C, C++; Go and Rust reuse it): the driver is Python.

session.py is pure logic (cells split into declarations and statements, accumulated, assembled
into one program with line directives), languages.py holds each language's profile, builder.py
compiles with a cache keyed by a hash, runner.py runs the program (stdout on a pty, stdin reads
become input requests, displays on a file descriptor), driver.py speaks the wrapper's frames.
"""
