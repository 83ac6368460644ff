# SPDX-License-Identifier: LGPL-3.0-or-later
"""Compiling a cell's program, with a build cache keyed by a hash.

The key covers the compiler's identity, the flags, the display header and the source, so a
cell run again with the same declarations reuses its program without compiling (and a declaration
cell run again with the same state is not checked again). Builds live in
BACKENDAI_BUILD_DIR (default /tmp/backendai-build, which the image creates and the jail policy
allows to execute from). The compiler runs in the driver's process group (an interrupt stops it) and in the kernel's
working directory; the user's files a build read (headers, objects named in LDFLAGS) are
recorded with their hashes, and a cached build whose files changed is built again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .languages import INCLUDE_DIR, Language

BUILD_DIR = Path(os.environ.get("BACKENDAI_BUILD_DIR", "/tmp/backendai-build"))
KEEP_BUILDS = 64


@dataclass(frozen=True)
class BuildResult:
    ok: bool
    exe: Path | None
    diagnostics: str   # the compiler's messages (warnings too when ok)
    cached: bool
    key: str
    argv: tuple[str, ...] = ()


class Builder:
    def __init__(self, lang: Language, root: Path = BUILD_DIR, cwd: str | None = None) -> None:
        self.lang = lang
        self.cwd = cwd or os.getcwd()
        self.root = root / lang.name
        self._identity: str | None = None
        self._pp_cache: dict[str, str] = {}

    def identity(self) -> str:
        """The compiler's version and target, part of every key."""
        if self._identity is None:
            r = subprocess.run(self.lang.identity_argv(), capture_output=True, text=True)
            self._identity = (r.stderr or r.stdout).strip()
        return self._identity

    def version(self) -> str:
        r = subprocess.run(self.lang.version_argv(), capture_output=True, text=True)
        return (r.stdout or r.stderr).strip()

    def key(self, source: str, cflags: tuple[str, ...], ldflags: tuple[str, ...]) -> str:
        header = (INCLUDE_DIR / "backendai_display.h").read_bytes()
        blob = json.dumps([self.lang.name, self.identity(), list(self.lang.base_flags), list(cflags), list(ldflags),
                           hashlib.sha256(header).hexdigest(), source])
        return hashlib.sha256(blob.encode()).hexdigest()

    def build(self, source: str, cflags: tuple[str, ...] = (), ldflags: tuple[str, ...] = (),
              syntax_only: bool = False) -> BuildResult:
        key = self.key(source, cflags, ldflags)
        final = self.root / key[:24]
        exe = final / "program"
        if (exe.is_file() or (syntax_only and (final / "checked").is_file())) and self._deps_unchanged(final):
            os.utime(final)  # most recently used: pruned last
            return BuildResult(True, None if syntax_only else exe, "", True, key)
        self.root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".build-", dir=self.root))
        try:
            src = work / f"cell{self.lang.source_suffix}"
            src.write_text(source)
            out = None if syntax_only else str(work / "program")
            depfile = work / "deps.d"
            argv = self.lang.compile_argv(str(src), out, cflags, ldflags)
            argv[1:1] = self.lang.dependency_flags(str(depfile))
            r = subprocess.run(argv, capture_output=True, cwd=self.cwd, stdin=subprocess.DEVNULL)
            diagnostics = (r.stdout + r.stderr).decode("utf-8", "replace")
            diagnostics = diagnostics.replace(f"{work}/", "").replace(str(work), ".")
            if r.returncode != 0:
                return BuildResult(False, None, diagnostics, False, key, tuple(argv))
            deps = self._deps(depfile, src, ldflags)
            if syntax_only:  # a declaration cell run again with the same state checks nothing
                final.mkdir(exist_ok=True)
                (final / "checked").touch()
                (final / "deps.json").write_text(json.dumps(deps))
                return BuildResult(True, None, diagnostics, False, key, tuple(argv))
            (work / "deps.json").write_text(json.dumps(deps))
            if final.is_dir():  # checked before (or built from files since changed)
                os.replace(work / "program", exe)
                os.replace(work / "deps.json", final / "deps.json")
            else:
                os.rename(work, final)
            self._prune()
            return BuildResult(True, exe, diagnostics, False, key, tuple(argv))
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)

    def _deps(self, depfile: Path, src: Path, ldflags: tuple[str, ...]) -> dict[str, str]:
        """{absolute path: sha256} of the user's files the build read."""
        names: list[str] = []
        try:
            text = depfile.read_text().replace("\\\n", " ")
            names += text.split(":", 1)[1].split() if ":" in text else []
        except OSError:
            pass
        names += [w for w in ldflags if not w.startswith("-")]
        out = {}
        for name in names:
            path = os.path.join(self.cwd, name)
            if os.path.abspath(path) == str(src) or not os.path.isfile(path):
                continue
            out[os.path.abspath(path)] = _hash_file(path)
        return out

    def _deps_unchanged(self, final: Path) -> bool:
        try:
            deps = json.loads((final / "deps.json").read_text())
        except (OSError, ValueError):
            return True  # nothing recorded: nothing to compare
        return all(os.path.isfile(p) and _hash_file(p) == h for p, h in deps.items())

    def preprocessed(self, source: str) -> str:
        """The text of the headers a cell's directives pull in (for completion), cached."""
        key = hashlib.sha256(source.encode()).hexdigest()
        if key not in self._pp_cache:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", suffix=self.lang.source_suffix, dir=self.root) as f:
                f.write(source)
                f.flush()
                r = subprocess.run(self.lang.preprocess_argv(f.name), capture_output=True, text=True, cwd=self.cwd,
                                   stdin=subprocess.DEVNULL, timeout=8)
            self._pp_cache[key] = r.stdout if r.returncode == 0 else ""
        return self._pp_cache[key]

    def _prune(self) -> None:
        builds = [p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")]
        if len(builds) <= KEEP_BUILDS:
            return
        builds.sort(key=lambda p: p.stat().st_mtime)
        for p in builds[:len(builds) - KEEP_BUILDS]:
            shutil.rmtree(p, ignore_errors=True)


def _hash_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
