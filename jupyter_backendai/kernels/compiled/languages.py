# SPDX-License-Identifier: LGPL-3.0-or-later
"""Per-language profiles of the compile-and-run engine: syntax rules, compiler, flags.

A language is a :class:`Language`: its :class:`~.session.Syntax` (how cells split and how a
program is assembled), the compiler command, and the magic that carries compiler flags.
Go and Rust add a Language here (and a Syntax subclass) and reuse the rest.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .session import Session, Syntax, Token, completion_prefix, is_complete

INCLUDE_DIR = Path(__file__).resolve().parent / "include"


class CppSyntax(Syntax):
    name = "cpp"
    keywords = Syntax.keywords | frozenset("""
        alignas alignof asm bool catch char8_t char16_t char32_t class concept consteval constexpr constinit
        const_cast co_await co_return co_yield decltype delete dynamic_cast explicit export false friend
        mutable namespace new noexcept nullptr operator private protected public reinterpret_cast requires
        static_assert static_cast template this thread_local throw true try typeid typename using virtual
        wchar_t override final""".split())
    decl_start = Syntax.decl_start | frozenset("""
        class constexpr consteval constinit explicit friend mutable thread_local typename virtual wchar_t
        char8_t char16_t char32_t decltype""".split())
    type_tags = frozenset({"struct", "union", "enum", "class"})
    overloads = True

    def _classify_more(self, body: list[Token], text_key: str) -> tuple[str, frozenset[str]] | None:
        first = body[0].text
        if first == "using":
            if len(body) > 2 and body[1].kind == "id" and body[2].text == "=":
                return "type", frozenset({f"typedef:{body[1].text}"})
            return "decl", frozenset({text_key})
        if first == "enum" and len(body) > 2 and body[1].text in ("class", "struct"):
            return "type", frozenset({f"type:{body[2].text}"})
        return None


@dataclass(frozen=True)
class Language:
    name: str
    syntax: Syntax
    compiler: str
    source_suffix: str
    #: flags before the user's (the display header is always included)
    base_flags: tuple[str, ...]
    #: magics whose words go to the compiler
    flag_magics: tuple[str, ...]
    keywords: frozenset[str] = field(default=frozenset())

    def compile_argv(self, src: str, out: str | None, cflags: tuple[str, ...], ldflags: tuple[str, ...]) -> list[str]:
        """The compiler's command line; ``out`` None checks the syntax only."""
        head = [self.compiler, *self.base_flags, "-I", str(INCLUDE_DIR), "-include", "backendai_display.h", *cflags]
        if out is None:
            return [*head, "-fsyntax-only", src]
        return [*head, "-o", out, src, *ldflags]

    def preprocess_argv(self, src: str) -> list[str]:
        return [self.compiler, *self.base_flags, "-I", str(INCLUDE_DIR), "-include", "backendai_display.h", "-E",
                "-P", src]

    # ----- hooks with gcc's behaviour as the default (other toolchains override) ------------

    def dependency_flags(self, depfile: str) -> list[str]:
        """Flags that make the compiler list the user's files a build read (make syntax), so a
        cached build is redone when one of them changes; [] when the compiler cannot."""
        if os.path.basename(self.compiler) in ("gcc", "g++", "cc", "c++", "clang", "clang++"):
            return ["-MMD", "-MF", depfile]
        return []

    def identity_argv(self) -> list[str]:
        """A command whose output identifies the toolchain (part of every build's cache key)."""
        return [self.compiler, "-v"]

    def version_argv(self) -> list[str]:
        """A command printing the version shown in kernel_info."""
        return [self.compiler, "-dumpfullversion"]

    def diagnostics(self, text: str, source: str) -> str:
        """The compiler's messages as the user should read them (line maps are applied here)."""
        return text

    def first_error(self, text: str) -> str:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        for ln in lines:
            if ": error:" in ln or ": fatal error:" in ln or "undefined reference" in ln:
                return ln.strip()
        return lines[-1].strip() if lines else "compilation failed"

    def is_complete(self, code: str) -> tuple[str, str]:
        return is_complete(code)

    def complete(self, code: str, cursor: int, session: Session, header_names: Callable[[str], set[str]]
                 ) -> tuple[int, list[str]]:
        """(cursor_start, matches): keywords, kept and typed names, and what the headers declare
        (``header_names(source)`` preprocesses a source of directives)."""
        start, prefix = completion_prefix(code, cursor)
        if not prefix:
            return cursor, []
        names = set(self.syntax.keywords) | session.identifiers()
        names |= {m for m in identifiers_in(code) if m != prefix}
        directives = "".join(d.text + "\n" for d in session.decls
                             if any(k.startswith(("include:", "define:")) for k in d.keys))
        directives += "".join(ln + "\n" for ln in code.splitlines() if ln.lstrip().startswith("#include"))
        try:
            names |= header_names(directives)
        except Exception:  # completion without the headers' names is still an answer
            pass
        return start, sorted(n for n in names if n.startswith(prefix) and not n.startswith("_"))


# The compiler runs in the kernel's working directory: `#include "mine.h"`, -I, -L and object
# files name the user's files there.
_DIAG_FLAGS = ("-fdiagnostics-color=never", "-fno-diagnostics-show-caret", "-fmax-errors=20", "-iquote", ".")

LANGUAGES: dict[str, Language] = {
    "c": Language("c", Syntax(), "gcc", ".c", _DIAG_FLAGS, ("CFLAGS",)),
    "cpp": Language("cpp", CppSyntax(), "g++", ".cpp", _DIAG_FLAGS, ("CXXFLAGS", "CFLAGS")),
}


def identifiers_in(text: str) -> set[str]:
    """Names worth completing from preprocessed headers (no reserved ``_x``/``__x`` names)."""
    return {m for m in re.findall(r"\b[A-Za-z][A-Za-z0-9_]*\b", text)}
