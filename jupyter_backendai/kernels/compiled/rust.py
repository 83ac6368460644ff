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

import re
from dataclasses import dataclass, field

SOURCE_NAME = "main.rs"

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
            units[-1] = Unit("stmt", code[start:b], prev_u.line)
            return
        units.append(Unit(kind, code[k:b], code.count("\n", 0, k) + 1, names))

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


@dataclass
class Declared:
    cell: int
    unit: Unit


@dataclass
class RustState:
    """Items and crate attributes kept across cells."""

    items: list[Declared] = field(default_factory=list)
    attrs: dict[str, int] = field(default_factory=dict)  # text -> cell

    def add(self, cell: int, units: list[Unit]) -> None:
        for u in units:
            if u.kind == "attr":
                self.attrs.setdefault(u.text.strip(), cell)
            elif u.kind == "item":
                names = set(u.names)
                if names:
                    self.items = [d for d in self.items if not names & set(d.unit.names)]
                self.items.append(Declared(cell, u))

    def copy(self) -> "RustState":
        return RustState(list(self.items), dict(self.attrs))


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


@dataclass
class Program:
    """An assembled program and, per program line (index 0 = line 1), its (cell, line)."""

    source: str
    lines: list[tuple[int, int] | None]
    has_result: bool = False


class _Builder:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.lines: list[tuple[int, int] | None] = []

    def generated(self, text: str) -> None:
        for ln in text.rstrip("\n").split("\n"):
            self.parts.append(ln + "\n")
            self.lines.append(None)

    def cell_text(self, cell: int, line: int, text: str) -> None:
        for k, ln in enumerate(text.rstrip("\n").split("\n")):
            self.parts.append(ln + "\n")
            self.lines.append((cell, line + k))

    def program(self, has_result: bool = False) -> Program:
        return Program("".join(self.parts), self.lines, has_result)


def assemble(state: RustState, cell: int, units: list[Unit], result_fn: str = "bai::__result") -> Program:
    """The program for a cell: kept items plus this cell's, then its statements in ``main``.

    ``state`` is not changed (the engine keeps the cell's items once they compile). The trailing
    expression's text, when shown, goes to ``result_fn(&str)``.
    """
    b = _Builder()
    if is_whole_program(units):
        # The cell as written (blank lines kept), so its lines are the program's.
        for u in units:
            while len(b.lines) < u.line - 1:
                b.cell_text(cell, len(b.lines) + 1, "")
            b.cell_text(cell, u.line, u.text)
        return b.program()
    st = state.copy()
    st.add(cell, units)
    b.generated("#![allow(unused)]")
    for text in st.attrs:
        b.generated(text)
    for d in st.items:
        b.cell_text(d.cell, d.unit.line, d.unit.text)
    stmts = [u for u in units if u.kind == "stmt"]
    b.generated("fn main() {")
    has_result = False
    for k, u in enumerate(stmts):
        if k == len(stmts) - 1:
            body, tail = tail_expression(u.text)
            if tail:
                if body.strip():
                    b.cell_text(cell, u.line, body)
                tail_line = u.line + body.count("\n")
                b.generated("let __bai_value = {")
                b.cell_text(cell, tail_line, tail)
                b.generated("};")
                b.generated("if let Some(s) = (&__BaiValue(&__bai_value)).__bai_show() "
                            f"{{ if s != \"()\" {{ {result_fn}(&s); }} }}")
                has_result = True
                continue
        b.cell_text(cell, u.line, u.text)
    b.generated("}")
    if has_result:
        b.generated(_RESULT_SUPPORT)
    return b.program(has_result)


_LOCATION_RE = re.compile(r"(?P<pre>(?:-->|:::)\s*|panicked at [^\n]*?, |^|[\s(])" + re.escape(SOURCE_NAME)
                          + r":(?P<line>\d+):(?P<col>\d+)", re.M)


def map_diagnostics(text: str, program: Program) -> str:
    """rustc's messages (human format) with program locations replaced by cell locations."""

    def where(line: int) -> tuple[int, int] | None:
        return program.lines[line - 1] if 0 < line <= len(program.lines) else None

    def loc(m: re.Match[str]) -> str:
        w = where(int(m.group("line")))
        if w is None:
            return m.group(0)
        return f"{m.group('pre')}cell[{w[0]}]:{w[1]}:{m.group('col')}"

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


def complete(code: str, cursor_pos: int, state: RustState) -> tuple[list[str], int, int]:
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
    for d in state.items:
        names.update(n for n in d.unit.names if re.fullmatch(r"\w+", n))
        names.update(f"{n.split()[-1]}!" for n in d.unit.names if n.startswith("macro "))
    names.update(re.findall(r"[A-Za-z_]\w*", skeleton(code)))
    names.discard(prefix)
    return sorted(n for n in names if n.startswith(prefix)), cursor_pos - len(prefix), cursor_pos
