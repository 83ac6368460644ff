# SPDX-License-Identifier: LGPL-3.0-or-later
"""Rust for the compile-and-run engine: what a cell declares, and the program built from cells.

Pure logic (no processes): items at a cell's top level (``fn``, ``struct``, ``enum``, ``impl``,
``trait``, ``use``, ``mod``, ``const``, ``static``, ``type``, ``macro_rules!``, with their
attributes) are kept across cells under their names, a redefinition replacing the old one;
the other statements run in a generated ``fn main`` under ``#![allow(unused)]``. A trailing
expression without a semicolon is the cell's result, shown with ``{:?}`` when its type is
``Debug`` (and not ``()``). A cell with its own ``fn main`` is a whole program and runs alone.

rustc has no line directives, so the assembled program carries a line map (program line ->
cell, line) and :func:`map_diagnostics` rewrites rustc's ``--> main.rs:L:C`` locations and
its source gutters to the cells' own lines.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Callable

from .languages import LANGUAGES, Language
from .session import CURRENT, Decl, Item, Session, Syntax, cell_name

SOURCE_NAME = "cell.rs"  # the builder writes the program as cell.rs

_IDENT = r"(?:r#)?[A-Za-z_][A-Za-z0-9_]*"
_VIS = r"(?:pub(?:\s*\([^)]*\))?\s+)?"
_QUAL = r"(?:(?:const|async|unsafe|default)\s+|extern\s+(?:\"[^\"]*\"\s+)?)*"
_ITEM_RE = re.compile(
    rf"{_VIS}{_QUAL}(fn|struct|enum|union|trait|impl|mod|use|const|static|type|extern\s+crate|macro_rules\s*!)"
    rf"(?![A-Za-z0-9_])")
_NAMED_RE = re.compile(rf"(?:mut\s+)?({_IDENT})")
_ATTR_RE = re.compile(r"#\s*\[")
_INNER_ATTR_RE = re.compile(r"#\s*!\s*\[")
#: Items that end at their ';' (a '}' inside them, as in ``use a::{b, c};``, does not end them).
_SEMI_ITEMS = ("use", "const", "static", "type", "extern crate")


def skeleton(code: str) -> str:
    """``code`` with comments, string and char literals blanked (newlines kept, same length)."""
    out = list(code)
    n = len(code)

    def blank(a: int, b: int) -> None:
        for k in range(a, min(b, n)):
            if out[k] != "\n":
                out[k] = " "

    i = 0
    while i < n:
        c = code[i]
        if code.startswith("//", i):
            j = code.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif code.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if code.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif code.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j)
            i = j
        elif (m := re.compile(r'b?r(#*)"').match(code, i)) and (i == 0 or not (code[i - 1].isalnum() or code[i - 1] == "_")):
            end = '"' + m.group(1)
            j = code.find(end, m.end())
            j = n if j < 0 else j + len(end)
            blank(m.end(), j - len(end))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and code[j] != '"':
                j += 2 if code[j] == "\\" else 1
            blank(i + 1, j)
            i = j + 1
        elif c == "'":
            # A char literal ('a', '\n', '\u{1F600}') or a lifetime / label ('a).
            if i + 1 < n and code[i + 1] == "\\":
                j = code.find("'", i + 2 if code[i + 2:i + 3] != "'" else i + 3)
                j = n if j < 0 else j
                blank(i + 1, j)
                i = j + 1
            elif i + 2 < n and code[i + 2] == "'":
                blank(i + 1, i + 2)
                i += 3
            else:
                i += 1
        else:
            i += 1
    return "".join(out)


@dataclass
class Unit:
    """A top-level piece of a cell: kind, text, offset and line (1-based) in the cell, names."""

    kind: str  # "attr" (#![...]) | "item" | "stmt"
    text: str
    line: int
    names: tuple[str, ...] = ()
    #: offset of the text in the cell
    start: int = 0


def _skip_ws(s: str, i: int) -> int:
    while i < len(s) and s[i].isspace():
        i += 1
    return i


def _match_close(s: str, i: int) -> int:
    """Index just past the bracket that closes the one at ``s[i]``."""
    depth = 0
    for j in range(i, len(s)):
        if s[j] in "([{":
            depth += 1
        elif s[j] in ")]}":
            depth -= 1
            if depth == 0:
                return j + 1
    return len(s)


def _item_end(skel: str, i: int, kind: str) -> int:
    """Index just past the item starting at ``i`` (after its attributes)."""
    depth = 0
    j = i
    while j < len(skel):
        c = skel[j]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0 and c == "}" and kind not in _SEMI_ITEMS:
                return j + 1
        elif c == ";" and depth == 0:
            return j + 1
        j += 1
    return len(skel)


def _stmt_end(skel: str, i: int) -> tuple[int, bool]:
    """End of the statement run starting at ``i``: at a ';' at depth 0, or before an item that
    follows a block closed at depth 0. The flag says whether it ended with ';'."""
    depth = 0
    j = i
    while j < len(skel):
        c = skel[j]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0 and c == "}":
                k = _skip_ws(skel, j + 1)
                if k < len(skel) and (_item_at(skel, k) or _INNER_ATTR_RE.match(skel, k)):
                    return j + 1, False
        elif c == ";" and depth == 0:
            return j + 1, True
        j += 1
    return len(skel), False


def _item_at(skel: str, i: int) -> tuple[int, str] | None:
    """(index of the item keyword's start, kind) if an item (after attributes) starts at ``i``."""
    j = i
    while _ATTR_RE.match(skel, j):
        j = _skip_ws(skel, _match_close(skel, skel.index("[", j)))
    m = _ITEM_RE.match(skel, j)
    if not m:
        return None
    kind = re.sub(r"\s+", " ", m.group(1)).replace(" !", "!")
    if kind in ("const", "unsafe") and re.match(r"(?:const|unsafe)\s*\{", skel[j:]):
        return None  # a const/unsafe block is an expression
    return j, kind


def _names(skel: str, text: str, kind: str) -> tuple[str, ...]:
    m = _ITEM_RE.match(skel)
    assert m
    rest = skel[m.end():]
    if kind == "use" or kind == "extern crate":
        return (re.sub(r"\s+", " ", text[m.start(1):]).rstrip(";").strip(),)
    if kind == "impl":
        brace = rest.find("{")
        header = re.sub(r"\s+", " ", rest[:brace if brace >= 0 else len(rest)]).strip()
        if re.search(r"\sfor\s", header):
            return (f"impl {header}",)
        body = skel[m.end() + brace:] if brace >= 0 else ""
        inner = _depth1(body)
        members = re.findall(rf"\b(?:fn|const|type)\s+({_IDENT})", inner)
        return tuple(f"impl {header}::{x}" for x in members) or (f"impl {header}",)
    if kind == "macro_rules!":
        mm = _NAMED_RE.match(rest.lstrip())
        return (f"macro {mm.group(1)}",) if mm else ()
    mm = _NAMED_RE.match(rest.lstrip())
    if not mm:
        return ()
    name = mm.group(1)
    return () if name == "_" else (name,)


def _depth1(body: str) -> str:
    """The text of ``body`` (starting at its '{') at bracket depth 1 only."""
    out, depth = [], 0
    for c in body:
        if c in "([{":
            depth += 1
            if depth == 1:
                continue
        elif c in ")]}":
            depth -= 1
        if depth == 1:
            out.append(c)
    return "".join(out)


def split_cell(code: str) -> list[Unit]:
    """The cell's top-level units: inner attributes, items, and runs of statements."""
    skel = skeleton(code)
    units: list[Unit] = []
    i = 0

    def add(kind: str, a: int, b: int, names: tuple[str, ...] = ()) -> None:
        # Comments and blank lines before a unit start on its line; doc comments stay with it.
        a = _skip_ws(skel, a)
        if not code[a:b].strip():
            return
        line_start = code.rfind("\n", 0, a) + 1
        # Comment lines just above belong to it (doc comments on items).
        k = line_start
        while k > 0:
            prev = code.rfind("\n", 0, k - 1) + 1
            if skel[prev:k].strip() or not code[prev:k].strip():
                break
            k = prev
        if kind == "stmt" and units and units[-1].kind == "stmt":
            prev_u = units[-1]
            start = _offset_of_line(code, prev_u.line)
            units[-1] = Unit("stmt", code[start:b], prev_u.line, start=start)
            return
        units.append(Unit(kind, code[k:b], code.count("\n", 0, k) + 1, names, k))

    while True:
        i = _skip_ws(skel, i)
        if i >= len(skel):
            break
        if _INNER_ATTR_RE.match(skel, i):
            j = _match_close(skel, skel.index("[", i))
            add("attr", i, j)
            i = j
            continue
        item = _item_at(skel, i)
        if item:
            kw, kind = item
            j = _item_end(skel, kw, kind)
            add("item", i, j, _names(skel[kw:j], code[kw:j], kind))
            i = j
            continue
        j, _ = _stmt_end(skel, i)
        add("stmt", i, j)
        i = j
    return units


def _offset_of_line(code: str, line: int) -> int:
    off = 0
    for _ in range(line - 1):
        off = code.index("\n", off) + 1
    return off


def is_whole_program(units: list[Unit]) -> bool:
    return any(u.kind == "item" and u.names == ("main",) for u in units)


def tail_expression(stmt_text: str) -> tuple[str, str]:
    """Split a statement run into (statements, trailing expression without ';')."""
    skel = skeleton(stmt_text)
    depth, last = 0, 0
    for j, c in enumerate(skel):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == ";" and depth == 0:
            last = j + 1
    tail = stmt_text[last:]
    if not skel[last:].strip():
        return stmt_text, ""
    return stmt_text[:last], tail


# Shows the cell's value when its type is Debug, through "autoref specialisation" (a method on
# the value wins over one on a reference to it): no result for types without Debug, and none
# for ().
_RESULT_SUPPORT = """\
struct __BaiValue<'a, T>(&'a T);
trait __BaiShowDebug { fn __bai_show(&self) -> Option<String>; }
impl<'a, T: std::fmt::Debug> __BaiShowDebug for __BaiValue<'a, T> {
    fn __bai_show(&self) -> Option<String> { Some(format!("{:?}", self.0)) }
}
trait __BaiShowNone { fn __bai_show(&self) -> Option<String>; }
impl<'a, T> __BaiShowNone for &__BaiValue<'a, T> {
    fn __bai_show(&self) -> Option<String> { None }
}
"""

#: Before each piece of a program: which source and line its next line is ("-": generated).
_MARK = "// @bai-line "
_MARK_RE = re.compile(r"^// @bai-line (?:(?P<gen>-)|(?P<name>.+):(?P<line>\d+))$")


def _mark(name: str | None, line: int = 0) -> str:
    return f"{_MARK}{name}:{line}\n" if name else f"{_MARK}-\n"


def assemble_program(decls: list[tuple[str, int, str]], body: list[tuple[str, int, str]] | None,
                     result_fn: str = "bai::__result") -> str:
    """A Rust program from kept items and a cell's statements.

    ``decls`` and ``body`` are (source name, first line, text). Crate attributes (``#![...]``)
    go first, under ``#![allow(unused)]``; the statements go into ``main`` (None: an empty
    main, to check the items), the last one's trailing expression to ``result_fn(&str)`` when
    its type is Debug. Comment lines carry the line map (:func:`line_map`).
    """
    attrs = [text.strip() for _, _, text in decls if _INNER_ATTR_RE.match(text.strip())]
    out = [_mark(None), "#![allow(unused)]\n", *(a + "\n" for a in dict.fromkeys(attrs))]
    for name, line, text in decls:
        if not _INNER_ATTR_RE.match(text.strip()):
            out += [_mark(name, line), text, "\n"]
    out += [_mark(None), "fn main() { bai::__line_map(__BAI_LINES);\n"]
    has_result = False
    pieces = list(body or ())
    for k, (name, line, text) in enumerate(pieces):
        stmts, tail = tail_expression(text) if k == len(pieces) - 1 else (text, "")
        if stmts.strip():
            out += [_mark(name, line), stmts, "\n"]
        if tail:
            tail_line = line + stmts.count("\n")
            out += [_mark(None), "let __bai_value = {\n", _mark(name, tail_line), tail, "\n", _mark(None), "};\n",
                    "if let Some(s) = (&__BaiValue(&__bai_value)).__bai_show() ",
                    f"{{ if s != \"()\" {{ {result_fn}(&s); }} }}\n"]
            has_result = True
    out.append("}\n")
    if has_result:
        out.append(_RESULT_SUPPORT)
    program = "".join(out)
    # Last, so that it moves no line: where each piece starts, for panics (bai::__line_map).
    return program + f"static __BAI_LINES: &[(u32, &str, u32)] = &[{_segments(program)}];\n"


def _segments(program: str) -> str:
    """``(program line, name, line)`` Rust tuples, one per line-map mark (see line_map)."""
    out = []
    for i, text in enumerate(program.split("\n")):
        m = _MARK_RE.match(text)
        if m:
            name, line = ("", 0) if m.group("gen") else (m.group("name"), int(m.group("line")))
            out.append(f"({i + 2}, {json.dumps(name, ensure_ascii=False)}, {line})")
    return ", ".join(out)


def whole_program(code: str, name: str) -> str:
    """A cell with its own main, as written (a comment first maps its lines)."""
    return _mark(name, 1) + code + ("" if code.endswith("\n") else "\n")


def line_map(source: str) -> list[tuple[str, int] | None]:
    """Per program line (index 0 = line 1): (source name, line), or None for generated lines."""
    out: list[tuple[str, int] | None] = []
    cur: tuple[str, int] | None = None
    for text in source.split("\n"):
        m = _MARK_RE.match(text)
        if m:
            out.append(None)
            cur = None if m.group("gen") else (m.group("name"), int(m.group("line")))
            continue
        out.append(cur)
        if cur is not None:
            cur = (cur[0], cur[1] + 1)
    return out


_LOCATION_RE = re.compile(r"(?P<pre>(?:-->|:::)\s*|panicked at [^\n]*?, |^|[\s(])" + re.escape(SOURCE_NAME)
                          + r":(?P<line>\d+):(?P<col>\d+)", re.M)


def map_diagnostics(text: str, source: str) -> str:
    """rustc's messages (human format) with program locations replaced by cell locations."""
    lines = line_map(source)

    def where(line: int) -> tuple[str, int] | None:
        return lines[line - 1] if 0 < line <= len(lines) else None

    def loc(m: re.Match[str]) -> str:
        w = where(int(m.group("line")))
        if w is None:
            return m.group(0)
        return f"{m.group('pre')}{w[0]}:{w[1]}:{m.group('col')}"

    out = []
    in_program = False  # the last location line named the program (not a std source file)
    for raw in text.split("\n"):
        if re.match(r"\s*(?:-->|:::)", raw):
            in_program = bool(re.match(r"\s*(?:-->|:::)\s*" + re.escape(SOURCE_NAME) + ":", raw))
        line = _LOCATION_RE.sub(loc, raw)
        g = re.match(r"^(\s*)(\d+)(\s*\|)", line)
        if g and in_program:
            w = where(int(g.group(2)))
            if w is not None:
                field_ = g.group(1) + g.group(2)
                line = str(w[1]).rjust(len(field_)) + g.group(3) + line[g.end():]
        out.append(line)
    return "\n".join(out)


def is_complete(code: str) -> str:
    """"complete", "incomplete" (open bracket, string or comment) or "invalid"."""
    skel = skeleton(code)
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
    # An unterminated string or block comment runs to the end of the skeleton's blanking.
    if re.search(r'"[^"]*$', _strip_closed(code)):
        return "incomplete"
    return "complete"


def _strip_closed(code: str) -> str:
    """Code with complete string literals and comments removed (to see an open one)."""
    return re.sub(r'"(?:\\.|[^"\\])*"|//[^\n]*|/\*[\s\S]*?\*/', "", code)


KEYWORDS = ("as break const continue crate else enum extern false fn for if impl in let loop match mod move "
            "mut pub ref return self Self static struct super trait true type unsafe use where while async "
            "await dyn").split()
PRELUDE = ("Option Some None Result Ok Err Vec String Box Clone Copy Debug Default Drop Eq Ord PartialEq "
           "PartialOrd Iterator IntoIterator ToString From Into AsRef Fn FnMut FnOnce Send Sync Sized "
           "bool char str i8 i16 i32 i64 i128 isize u8 u16 u32 u64 u128 usize f32 f64 std core bai").split()
MACROS = ("println! print! eprintln! eprint! format! vec! assert! assert_eq! assert_ne! panic! write! "
          "writeln! dbg! todo! unimplemented! unreachable! matches! include_str! concat! stringify!").split()
#: Members offered after ``std::`` (the modules) and a few common module paths.
STD_PATHS = {
    "std": ("collections fmt io iter mem ops cmp convert env fs thread sync time process str string vec "
            "num f64 f32 hash rc cell boxed char path").split(),
    "std::collections": "HashMap HashSet BTreeMap BTreeSet VecDeque BinaryHeap LinkedList".split(),
    "std::io": "stdin stdout stderr Read Write BufRead BufReader BufWriter Error Result".split(),
    "std::fmt": "Display Debug Formatter Result Write".split(),
    "std::sync": "Arc Mutex RwLock mpsc Condvar Once Barrier atomic".split(),
    "std::time": "Duration Instant SystemTime UNIX_EPOCH".split(),
    "std::thread": "spawn sleep current JoinHandle scope".split(),
    "std::cmp": "Ordering max min Reverse".split(),
    "bai": "display display_svg display_png display_html display_bundle".split(),
}


def complete(code: str, cursor_pos: int, kept: list[str]) -> tuple[list[str], int, int]:
    """(matches, cursor_start, cursor_end): keywords, prelude names, macros, kept items, names
    in the cell, and members of a few std paths after ``path::``."""
    before = code[:cursor_pos]
    m = re.search(r"((?:[A-Za-z_]\w*::)+)(\w*)$", before)
    if m:
        path, prefix = m.group(1)[:-2], m.group(2)
        found = [x for x in STD_PATHS.get(path, ()) if x.startswith(prefix)]
        return found, cursor_pos - len(prefix), cursor_pos
    m = re.search(r"[A-Za-z_]\w*$", before)
    prefix = m.group(0) if m else ""
    if not prefix:
        return [], cursor_pos, cursor_pos
    names = set(KEYWORDS) | set(PRELUDE) | set(MACROS)
    for text in kept:
        for u in split_cell(text):
            names.update(n for n in u.names if re.fullmatch(r"\w+", n))
            names.update(f"{n.split()[-1]}!" for n in u.names if n.startswith("macro "))
    names.update(re.findall(r"[A-Za-z_]\w*", skeleton(code)))
    names.discard(prefix)
    return sorted(n for n in names if n.startswith(prefix)), cursor_pos - len(prefix), cursor_pos


# ----- the engine's view: Syntax and Language ---------------------------------------------------

#: The display helper crate, built in the image (images/rust/Dockerfile).
BAI_RLIB = "/opt/kernel/rust/libbai.rlib"


class RustSyntax(Syntax):
    """Cells split by :func:`split_cell`; items keyed by their names (impl blocks by header and
    members, ``use`` by its path), crate attributes by their text."""

    name = "rust"
    keywords = frozenset(KEYWORDS)

    def split(self, code: str) -> list[Item]:
        items = []
        for u in split_cell(code):
            end = u.start + len(u.text)
            if u.kind == "item" and u.names == ("main",):
                items.append(Item("main", u.start, end))
            elif u.kind == "attr":
                items.append(Item("pp", u.start, end, frozenset({f"attr:{u.text.strip()}"})))
            elif u.kind == "item":
                keys = frozenset(f"name:{n}" for n in u.names) or frozenset({"text:" + re.sub(r"\s+", " ", u.text)})
                items.append(Item("decl", u.start, end, keys))
            else:
                items.append(Item("stmt", u.start, end))
        return items

    def whole_program(self, clean: str) -> str:
        return whole_program(clean, CURRENT)

    def assemble(self, decls: list[Decl], cell: int, body: list[tuple[int, str]] | None) -> str:
        kept = [(CURRENT if d.cell == cell else cell_name(d.cell), d.line, d.text) for d in decls]
        return assemble_program(kept, None if body is None else [(CURRENT, line, text) for line, text in body])


def _link_args(ldflags: tuple[str, ...]) -> list[str]:
    """``-lm``/``-L dir`` as rustc takes them; anything else goes to the linker."""
    out: list[str] = []
    it = iter(ldflags)
    for f in it:
        if f in ("-l", "-L"):
            out += [f, next(it, "")]
        elif f.startswith(("-l", "-L")):
            out += [f[:2], f[2:]]
        else:
            out += ["-C", f"link-arg={f}"]
    return out


class RustLanguage(Language):
    """rustc (no cargo), edition 2021, linked with the bai crate; ``//% RUSTFLAGS``/``CFLAGS``
    go to rustc, ``//% LDFLAGS`` (``-lm``, ``-L dir``, linker flags) to the link."""

    def compile_argv(self, src: str, out: str | None, cflags: tuple[str, ...], ldflags: tuple[str, ...]) -> list[str]:
        head = [self.compiler, *self.base_flags, "--extern", f"bai={BAI_RLIB}", *cflags]
        if out is None:
            return [*head, "--emit=metadata", "-o", "cell.rmeta", src]
        return [*head, "-o", out, src, *_link_args(ldflags)]

    def version_argv(self) -> list[str]:
        return ["/bin/sh", "-c", f"{self.compiler} --version | cut -d' ' -f2"]

    def identity_argv(self) -> list[str]:
        return [self.compiler, "-vV"]

    def diagnostics(self, text: str, source: str) -> str:
        return map_diagnostics(text, source)

    def first_error(self, text: str) -> str:
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        return next((ln for ln in lines if ln.startswith("error")), lines[0] if lines else "compilation failed")

    def is_complete(self, code: str) -> tuple[str, str]:
        status = is_complete(code)
        return status, ("    " if status == "incomplete" else "")

    def complete(self, code: str, cursor: int, session: Session, header_names: Callable[[str], set[str]]
                 ) -> tuple[int, list[str]]:
        matches, start, _ = complete(code, cursor, [d.text for d in session.decls])
        return start, matches


RUST = RustLanguage("rust", RustSyntax(), "rustc", ".rs", ("--edition", "2021", "--color", "never", "-C", "debuginfo=0"),
                    ("RUSTFLAGS", "CFLAGS"))
LANGUAGES["rust"] = RUST
