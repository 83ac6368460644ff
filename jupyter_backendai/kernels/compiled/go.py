# SPDX-License-Identifier: LGPL-3.0-or-later
"""Go for the compile-and-run engine: what a cell declares, and the program built from cells.

Pure logic (no processes): a cell is split into top-level units; ``func``/``type``/``var``/
``const`` units are declarations kept across cells under their names (a redefinition replaces
the old one), ``import`` units accumulate, everything else runs in a generated ``main``. A cell
with ``package`` or ``func main`` is a whole program and runs alone.

Lines map back with Go's own ``//line cell[N]:L:C`` directives, so compile errors and panics
name the cell and its line. Imports that nothing uses become blank imports (``_ "os"``), and
well-known standard packages used without an import are imported, so cells need not manage
imports; top-level ``x := ...`` variables of the statements get ``_ = x`` so Go's "declared and
not used" does not fail a cell that just computes something.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from dataclasses import dataclass
from typing import Callable

from .languages import LANGUAGES, Language
from .session import CURRENT, Decl, Item, Session, Syntax, cell_name

#: Standard packages imported when a cell uses ``name.`` without importing them.
AUTO_IMPORTS = {
    name.rsplit("/", 1)[-1]: name for name in (
        "bufio bytes container/heap container/list encoding/base64 encoding/binary encoding/csv "
        "encoding/hex encoding/json errors fmt image image/color image/png io math math/big math/bits "
        "math/cmplx math/rand os path path/filepath reflect regexp sort strconv strings sync "
        "sync/atomic time unicode unicode/utf8 bai").split()
}

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_METHOD_RE = re.compile(rf"func\s*\(\s*(?:{_IDENT}\s+)?\*?\s*({_IDENT})[^)]*\)\s*({_IDENT})\s*[\[(]")
_FUNC_RE = re.compile(rf"func\s+({_IDENT})\s*[\[(]")
_SPEC_RE = re.compile(rf"(var|const|type)\s+({_IDENT}(?:\s*,\s*{_IDENT})*)")
_GROUP_ITEM_RE = re.compile(rf"\s*({_IDENT}(?:\s*,\s*{_IDENT})*)")
_IMPORT_SPEC_RE = re.compile(r'(?:(' + _IDENT + r'|\.)\s+)?"([^"]+)"')
_SHORT_VAR_RE = re.compile(rf"^\s*({_IDENT}(?:\s*,\s*{_IDENT})*)\s*:=", re.M)
_SELECTOR_RE = re.compile(rf"(?<![\w.])({_IDENT})\s*\.\s*[A-Za-z_]")
# A line ending like this goes on on the next one (Go inserts no semicolon after these).
_CONTINUES = tuple(",([{+-*/%&|^<>=!:.")


def skeleton(code: str) -> str:
    """``code`` with the text of comments, strings and runes blanked (newlines kept).

    Same length and line structure as the code, so positions carry over, while brackets and
    keywords inside literals no longer count.
    """
    out = list(code)
    i, n = 0, len(code)
    while i < n:
        c = code[i]
        if c == "/" and code.startswith("//", i):
            j = code.find("\n", i)
            j = n if j < 0 else j
        elif c == "/" and code.startswith("/*", i):
            j = code.find("*/", i + 2)
            j = n if j < 0 else j + 2
        elif c in "\"'":
            j = i + 1
            while j < n and code[j] != c and code[j] != "\n":
                j += 2 if code[j] == "\\" else 1
            j = min(j + 1, n)
            for k in range(i + 1, j - 1):
                if out[k] != "\n":
                    out[k] = " "
            i = j
            continue
        elif c == "`":
            j = code.find("`", i + 1)
            j = n if j < 0 else j + 1
            for k in range(i + 1, j - 1):
                if out[k] != "\n":
                    out[k] = " "
            i = j
            continue
        else:
            i += 1
            continue
        for k in range(i, j):
            if out[k] != "\n":
                out[k] = " "
        i = j
    return "".join(out)


@dataclass
class Unit:
    """A top-level piece of a cell: its kind, text, first line (1-based) and declared names."""

    kind: str  # "package" | "import" | "decl" | "stmt"
    text: str
    line: int
    names: tuple[str, ...] = ()
    #: (alias or "", path) of an import unit
    imports: tuple[tuple[str, str], ...] = ()
    #: offset of the text in the cell
    start: int = 0


def _kind_and_names(skel: str) -> tuple[str, tuple[str, ...]]:
    head = skel.lstrip()
    word = re.match(_IDENT, head)
    first = word.group(0) if word else ""
    if first == "package":
        return "package", ()
    if first == "import":
        return "import", ()
    if first == "func":
        m = _FUNC_RE.match(head)
        if m:
            return "decl", (m.group(1),)
        m = _METHOD_RE.match(head)
        if m:
            return "decl", (f"{m.group(1)}.{m.group(2)}",)
        return "stmt", ()  # a function literal
    if first in ("var", "const", "type"):
        rest = head[len(first):].lstrip()
        if rest.startswith("("):
            names: list[str] = []
            depth = 0
            for line in rest.split("\n"):
                if depth == 1 and line.strip():
                    m = _GROUP_ITEM_RE.match(line)
                    if m:
                        found = [x.strip() for x in m.group(1).split(",")]
                        names += found[:1] if first == "type" else found
                depth += sum(line.count(c) for c in "([{") - sum(line.count(c) for c in ")]}")
            return "decl", tuple(names)
        m = _SPEC_RE.match(head)
        if m:
            names = [x.strip() for x in m.group(2).split(",")]
            return "decl", tuple(names[:1] if first == "type" else names)
        return "decl", ()
    return "stmt", ()


def _ends_unit(skel_line: str) -> bool:
    s = skel_line.rstrip()
    if not s:
        return True
    if s.endswith("++") or s.endswith("--"):
        return True
    return not s.endswith(_CONTINUES)


def split_cell(code: str) -> list[Unit]:
    """The cell's top-level units in order; comment lines go with the unit that follows."""
    skel = skeleton(code)
    lines, slines = code.split("\n"), skel.split("\n")
    offsets = [0]
    for ln in lines:
        offsets.append(offsets[-1] + len(ln) + 1)
    units: list[Unit] = []
    pending: list[int] = []  # blank and comment-only lines waiting for the next unit
    i = 0
    while i < len(lines):
        if not slines[i].strip():
            pending.append(i)
            i += 1
            continue
        start, depth = i, 0
        while True:
            depth += sum(slines[i].count(c) for c in "([{") - sum(slines[i].count(c) for c in ")]}")
            i += 1
            if i >= len(lines) or (depth <= 0 and _ends_unit(slines[i - 1])):
                break
        kind, names = _kind_and_names("\n".join(slines[start:i]))
        # Leading comment lines (doc comments) belong to the unit; blank lines do not.
        first = start
        while first - 1 in pending and lines[first - 1].strip():
            first -= 1
        text = "\n".join(lines[first:i])
        imports = _parse_imports("\n".join(slines[start:i]), "\n".join(lines[start:i])) if kind == "import" else ()
        if kind == "stmt" and units and units[-1].kind == "stmt":
            prev = units[-1]
            units[-1] = Unit("stmt", "\n".join(lines[prev.line - 1:i]), prev.line, start=prev.start)
        else:
            units.append(Unit(kind, text, first + 1, names, imports, offsets[first]))
        pending = []
    return units


def _parse_imports(skel: str, text: str) -> tuple[tuple[str, str], ...]:
    # Paths are blanked in the skeleton: read them from the text, positions from the skeleton.
    body = text[skel.index("import") + len("import"):]
    return tuple((alias or "", path) for alias, path in _IMPORT_SPEC_RE.findall(body))


def is_whole_program(units: list[Unit]) -> bool:
    """A cell with its own ``package`` clause or ``func main`` is a complete program."""
    return any(u.kind == "package" or (u.kind == "decl" and u.names == ("main",)) for u in units)


def line_directive(name: str, line: int) -> str:
    """Go's own line directive (at column 1): what follows is line ``line`` of ``name``."""
    return f"//line {name}:{line}:1\n"


def import_specs(text: str) -> tuple[tuple[str, str], ...]:
    """The (alias, path) pairs of an import declaration's text."""
    skel = skeleton(text)
    if not re.match(r"\s*import\b", skel):
        return ()
    return _parse_imports(skel, text)


def _imports_block(imports: list[tuple[str, str]], skel_body: str) -> str:
    used = set(_SELECTOR_RE.findall(skel_body))
    have = {alias or path.rsplit("/", 1)[-1] for alias, path in imports}
    declared = set(re.findall(rf"\b({_IDENT})\s*:=", skel_body)) | set(
        re.findall(rf"\b(?:var|const|type|func)\s+({_IDENT})", skel_body))
    specs = []
    for alias, path in imports:
        name = alias or path.rsplit("/", 1)[-1]
        if alias in ("_", ".") or name in used:
            specs.append(f'{alias + " " if alias else ""}"{path}"')
        else:
            specs.append(f'_ "{path}"')  # imported but unused here: Go would refuse the program
    for name in sorted(used - have - declared):
        if name in AUTO_IMPORTS:
            specs.append(f'"{AUTO_IMPORTS[name]}"')
    if not specs:
        return ""
    return "import (\n" + "".join(f"\t{s}\n" for s in dict.fromkeys(specs)) + ")\n"


def _depth0(skel: str) -> str:
    """Only the lines of ``skel`` that start at bracket depth 0 (a block's inside is dropped)."""
    out, depth = [], 0
    for line in skel.split("\n"):
        if depth == 0:
            out.append(line)
        depth += sum(line.count(c) for c in "([{") - sum(line.count(c) for c in ")]}")
    return "\n".join(out)


def assemble_program(decls: list[tuple[str, int, str]], body: list[tuple[str, int, str]] | None) -> str:
    """A Go program from kept declarations and a cell's statements.

    ``decls`` and ``body`` are (source name, first line, text); imports among the declarations
    are merged into one import block (unused ones blank, missing well-known ones added), the
    statements go into ``main`` (None: an empty main, to check the declarations).
    """
    imports: list[tuple[str, str]] = []
    parts: list[str] = []
    for name, line, text in decls:
        specs = import_specs(text)
        if specs:
            imports += [sp for sp in specs if sp not in imports]
        else:
            parts.append(f"{line_directive(name, line)}{text}\n")
    main = ["func main() {\n"]
    for name, line, text in body or ():
        main.append(f"{line_directive(name, line)}{text}\n")
        for m in _SHORT_VAR_RE.finditer(_depth0(skeleton(text))):
            # no "declared and not used" for a cell's top-level variables
            main += [f"\t_ = {n.strip()}\n" for n in m.group(1).split(",") if n.strip() != "_"]
    main.append("}\n")
    decl_text, main_text = "".join(parts), "".join(main)
    block = _imports_block(imports, skeleton(decl_text + main_text))
    return f"package main\n\n{block}\n{decl_text}{line_directive('<main>', 1)}{main_text}"


def whole_program(code: str, name: str) -> str:
    """A cell with its own main: as written (a package clause and imports added if missing)."""
    units = split_cell(code)
    if any(u.kind == "package" for u in units):
        return "".join(f"{line_directive(name, u.line)}{u.text}\n" for u in units)
    imports = [sp for u in units if u.kind == "import" for sp in u.imports]
    body = "".join(f"{line_directive(name, u.line)}{u.text}\n" for u in units if u.kind != "import")
    return f"package main\n\n{_imports_block(imports, skeleton(body))}\n{body}"


_HEADER_RE = re.compile(r"^# command-line-arguments\n", re.M)


def clean_compiler_output(text: str) -> str:
    """go build's messages with its package header dropped (the //line directives already
    named the cells)."""
    return _HEADER_RE.sub("", text)


def is_complete(code: str) -> str:
    """"complete", "incomplete" (an open bracket, string or comment) or "invalid"."""
    skel = skeleton(code)
    if code.count("`") % 2 or re.search(r"/\*(?:(?!\*/)[\s\S])*$", code):
        return "incomplete"
    depth = 0
    for c in skel:
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth < 0:
                return "invalid"
    if depth > 0:
        return "incomplete"
    return "complete"


KEYWORDS = ("break case chan const continue default defer else fallthrough for func go goto if import "
            "interface map package range return select struct switch type var").split()
BUILTINS = ("append cap close complex copy delete imag len make new panic print println real recover "
            "bool byte complex64 complex128 error float32 float64 int int8 int16 int32 int64 rune string "
            "uint uint8 uint16 uint32 uint64 uintptr any comparable true false iota nil").split()
_DOC_NAME_RE = re.compile(rf"^(?:func|type|var|const)\s+(?:\([^)]*\)\s*)?({_IDENT})", re.M)


def doc_members(go_doc_short: str) -> list[str]:
    """Exported names in the output of ``go doc -short PKG``."""
    return sorted({m for m in _DOC_NAME_RE.findall(go_doc_short) if m[:1].isupper()})


def complete(code: str, cursor_pos: int, kept: list[str],
             members: Callable[[str], list[str]]) -> tuple[list[str], int, int]:
    """(matches, cursor_start, cursor_end) at the cursor; ``kept`` are the texts of the kept
    declarations, ``members(path)`` lists a package's exported names (from ``go doc``)."""
    before = code[:cursor_pos]
    m = re.search(rf"({_IDENT})\.({_IDENT})?$", before)
    if m:
        pkg, prefix = m.group(1), m.group(2) or ""
        paths: dict[str, str] = {}
        for text in [*kept, code]:
            for u in split_cell(text):
                for alias, path in u.imports:
                    paths.setdefault(alias or path.rsplit("/", 1)[-1], path)
        path = paths.get(pkg) or AUTO_IMPORTS.get(pkg)
        if not path:
            return [], cursor_pos, cursor_pos
        found = [x for x in members(path) if x.startswith(prefix)]
        return found, cursor_pos - len(prefix), cursor_pos
    m = re.search(rf"{_IDENT}$", before)
    prefix = m.group(0) if m else ""
    names = set(KEYWORDS) | set(BUILTINS) | set(AUTO_IMPORTS)
    for text in kept:
        for u in split_cell(text):
            names.update(n.split(".")[-1] for n in u.names)
    names.update(re.findall(_IDENT, skeleton(code)))
    names.discard(prefix)
    return sorted(n for n in names if n.startswith(prefix) and prefix), cursor_pos - len(prefix), cursor_pos


# ----- the engine's view: Syntax and Language ---------------------------------------------------


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


class GoSyntax(Syntax):
    """Cells split by :func:`split_cell`; declarations keyed by the names they declare (a method
    as Type.Name), imports by their text (specs are merged when assembling)."""

    name = "go"
    keywords = frozenset(KEYWORDS)

    def split(self, code: str) -> list[Item]:
        items = []
        for u in split_cell(code):
            end = u.start + len(u.text)
            if u.kind == "package" or (u.kind == "decl" and u.names == ("main",)):
                items.append(Item("main", u.start, end))
            elif u.kind == "import":
                items.append(Item("pp", u.start, end, frozenset({f"import:{_norm(u.text)}"})))
            elif u.kind == "decl":
                keys = frozenset(f"name:{n}" for n in u.names if n != "_") or frozenset({f"text:{_norm(u.text)}"})
                items.append(Item("decl", u.start, end, keys))
            else:
                items.append(Item("stmt", u.start, end))
        return items

    def whole_program(self, clean: str) -> str:
        return whole_program(clean, CURRENT)

    def assemble(self, decls: list[Decl], cell: int, body: list[tuple[int, str]] | None) -> str:
        kept = [(CURRENT if d.cell == cell else cell_name(d.cell), d.line, d.text) for d in decls]
        return assemble_program(kept, None if body is None else [(CURRENT, line, text) for line, text in body])


class GoLanguage(Language):
    """``go build`` in GOPATH mode (the image sets GO111MODULE=off, CGO_ENABLED=0, GOPATH with
    the bai package); ``//% GOFLAGS``/``CFLAGS`` go to go build, ``//% LDFLAGS`` to -ldflags."""

    def compile_argv(self, src: str, out: str | None, cflags: tuple[str, ...], ldflags: tuple[str, ...]) -> list[str]:
        argv = [self.compiler, "build", "-o", out or os.devnull, *cflags]
        if ldflags:
            argv.append("-ldflags=" + " ".join(ldflags))
        return [*argv, src]

    def version_argv(self) -> list[str]:
        return ["/bin/sh", "-c", f"{self.compiler} env GOVERSION | cut -c3-"]

    def identity_argv(self) -> list[str]:
        return ["/bin/sh", "-c", f"{self.compiler} version; {self.compiler} env GOOS GOARCH CGO_ENABLED GOFLAGS"]

    def diagnostics(self, text: str, source: str) -> str:
        return clean_compiler_output(text)

    def first_error(self, text: str) -> str:
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        return lines[0] if lines else "compilation failed"

    def is_complete(self, code: str) -> tuple[str, str]:
        status = is_complete(code)
        return status, ("\t" if status == "incomplete" else "")

    def complete(self, code: str, cursor: int, session: Session, header_names: Callable[[str], set[str]]
                 ) -> tuple[int, list[str]]:
        matches, start, _ = complete(code, cursor, [d.text for d in session.decls], _package_members)
        return start, matches


@functools.lru_cache(maxsize=256)
def _package_members_cached(path: str) -> tuple[str, ...]:
    try:
        r = subprocess.run(["go", "doc", "-short", path], capture_output=True, text=True, timeout=8,
                           stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return tuple(doc_members(r.stdout)) if r.returncode == 0 else ()


def _package_members(path: str) -> list[str]:
    return list(_package_members_cached(path))


GO = GoLanguage("go", GoSyntax(), "go", ".go", (), ("GOFLAGS", "CFLAGS"))
LANGUAGES["go"] = GO
