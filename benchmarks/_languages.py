# SPDX-License-Identifier: LGPL-3.0-or-later
"""Per-language rows of execute_rtt.py: the kernel's round trip against the bare runtime.

For each language the same trivial statement runs two ways, both in the language's image
(entrypoint, jail and limits included) and both crossing the host/container boundary once
per round trip:

  kernel        execute_request on the Backend.AI kernel (wrapper + driver, or native kernel)
  bare runtime  one line into a minimal read-eval loop of the runtime on `docker run -i`,
                wait for the loop's end-of-line marker: the least a REPL must do

The ratio is what the Jupyter protocol and the wrapper add to the runtime's own evaluation.
Compiled languages have no eval: their bare loop runs the program the statement compiles to,
as their kernel does on a build-cache hit.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass

from _cluster import BENCH_LABEL, RUN_ID

MARK = "\x01"


@dataclass(frozen=True)
class LangBench:
    lang: str
    statement: str
    #: argv (in the image) of a loop that evaluates each stdin line, then prints MARK + newline
    bare: tuple[str, ...]

    @property
    def kernel_name(self) -> str:
        return f"backendai-{self.lang}"


_C_MAIN = "int main(void) { volatile int x = 1 + 1; return 0; }"

LANGUAGES: dict[str, LangBench] = {b.lang: b for b in (
    LangBench("python", "x = 1 + 1", (
        "/opt/kernel/bin/python", "-u", "-c",
        "import sys\nns = {}\nfor line in sys.stdin:\n    exec(line, ns)\n    print('\\x01', flush=True)")),
    LangBench("javascript", "x = 1 + 1", (
        "/usr/bin/node", "-e",
        "const vm = require('vm'); const ctx = vm.createContext({});"
        "require('readline').createInterface({input: process.stdin})"
        ".on('line', l => { vm.runInContext(l, ctx); process.stdout.write('\\x01\\n'); });")),
    LangBench("ruby", "x = 1 + 1", (
        "/usr/bin/ruby", "-e", "STDOUT.sync = true; b = binding; while (l = STDIN.gets); eval(l, b); puts \"\\x01\"; end")),
    LangBench("perl", "$x = 1 + 1;", ("/usr/bin/perl", "-e", "$| = 1; while (<STDIN>) { eval $_; print \"\\x01\\n\" }")),
    LangBench("lua", "x = 1 + 1", (
        "/usr/bin/lua5.4", "-e",
        "for l in io.lines() do load(l)(); io.write('\\1\\n'); io.stdout:flush() end")),
    LangBench("php", "$x = 1 + 1;", (
        "/usr/bin/php", "-r", "while (($l = fgets(STDIN)) !== false) { eval($l); echo \"\\x01\\n\"; fflush(STDOUT); }")),
    LangBench("r", "x <- 1 + 1", (
        "/usr/bin/Rscript", "-e",
        "con <- file('stdin'); open(con); while (length(l <- readLines(con, n = 1)) > 0) "
        "{ eval(parse(text = l), globalenv()); cat('\\001\\n'); flush(stdout()) }")),
    LangBench("bash", "x=$((1 + 1))", ("/bin/bash", "-c", "while IFS= read -r l; do eval \"$l\"; printf '\\001\\n'; done")),
    LangBench("octave", "x = 1 + 1;", (
        "/usr/bin/octave-cli", "-q", "--no-window-system", "--eval",
        # input(), not fgetl(stdin): Octave's stdin stream waits to fill its buffer on a pipe.
        "while true; l = input('', 's'); eval(l); printf('\\001\\n'); fflush(stdout); end")),
    LangBench("java", "int x = 1 + 1;", (
        "/bin/sh", "-c",
        # JShell's own tool reading stdin: each snippet, then a print of the marker.
        "exec jshell --feedback silent")),
    LangBench("c", "int x = 1 + 1;", (
        "/bin/bash", "-c",
        f"printf '%s' '{_C_MAIN}' | gcc -x c -o /tmp/p - && while read -r l; do /tmp/p; printf '\\001\\n'; done")),
    LangBench("cpp", "int x = 1 + 1;", (
        "/bin/bash", "-c",
        f"printf '%s' '{_C_MAIN}' | g++ -x c++ -o /tmp/p - && while read -r l; do /tmp/p; printf '\\001\\n'; done")),
    LangBench("go", "x := 1 + 1; _ = x", (
        "/bin/bash", "-c",
        "cd /tmp && printf 'package main\\nfunc main() { x := 1 + 1; _ = x }\\n' > p.go && go build -o p p.go"
        " && while read -r l; do ./p; printf '\\001\\n'; done")),
    LangBench("rust", "let _x = 1 + 1;", (
        "/bin/bash", "-c",
        "cd /tmp && printf 'fn main() { let _x = 1 + 1; }\\n' > p.rs && rustc -O -o p p.rs"
        " && while read -r l; do ./p; printf '\\001\\n'; done")),
)}


def bare_input(b: LangBench) -> str:
    """The line the bare loop reads per round trip (JShell prints the marker itself)."""
    if b.lang == "java":
        return f'{b.statement} System.out.println("\\u0001");\n'
    return b.statement + "\n"


class BareRepl:
    """The runtime's minimal read-eval loop in a `docker run -i` container of the image."""

    def __init__(self, image: str, bench: LangBench, timeout: float = 120.0):
        self.bench = bench
        self.name = f"bai-bench-{RUN_ID}-bare-{bench.lang}"
        self.proc = subprocess.Popen(
            ["docker", "run", "-i", "--rm", "--name", self.name, "--label", f"{BENCH_LABEL}={RUN_ID}",
             "--network", "none", "--cpus", "1", "--memory", "1g", "--cap-drop", "ALL",
             # The runtime alone: not under the image's tini + jail entrypoint (whose exec
             # allow-list is the kernel's, e.g. no jshell binary in the Java image).
             "--security-opt", "no-new-privileges", "--entrypoint", bench.bare[0], image, *bench.bare[1:]],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._buf = b""
        self.rtt(timeout)  # the loop is up (and compiled, where it compiles) once it answers

    def _read_mark(self, timeout: float) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        import select

        while (MARK.encode() + b"\n") not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise RuntimeError(f"bare {self.bench.lang} loop did not answer (exit {self.proc.poll()})")
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise RuntimeError(f"bare {self.bench.lang} loop closed its output")
                self._buf += chunk
        self._buf = self._buf.split(MARK.encode() + b"\n", 1)[1]

    def rtt(self, timeout: float = 30.0) -> float:
        assert self.proc.stdin is not None
        t0 = time.perf_counter()
        self.proc.stdin.write(bare_input(self.bench).encode())
        self.proc.stdin.flush()
        self._read_mark(timeout)
        return time.perf_counter() - t0

    def close(self) -> None:
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
            self.proc.wait(10)
        except Exception:
            subprocess.run(["docker", "rm", "-f", self.name], capture_output=True)
            self.proc.kill()
