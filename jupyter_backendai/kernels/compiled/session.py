# SPDX-License-Identifier: LGPL-3.0-or-later
"""Cells of a compile-and-run language, without a compiler: pure logic, unit-tested alone.

A cell is split into top-level items (a tokenizer that knows comments, strings and brackets,
not a parser). Items that declare something (preprocessor lines, functions, prototypes, types,
global variables) accumulate across cells, keyed by what they declare, so a redefinition
replaces the old one in place. A cell holding any statement runs: its statements (and its
local variable declarations) go into a generated ``main`` after the accumulated declarations.
A cell that defines ``main`` itself is a whole program, compiled on its own. Comment magics
(``//% CFLAGS -O2``, ``//% LDFLAGS -lm``, ``//% ARGS a b``, ``//% VERBOSE``) set the cell's
flags; flags of a declaration cell stay with its declarations.

The language-specific parts live in :class:`Syntax` (keywords, how a program is assembled);
languages.py subclasses it.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field, replace

# ----- tokens ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    kind: str   # "id", "num", "str", "pp" (a whole preprocessor line), "op"
    text: str
    start: int
    end: int


class Unterminated(Exception):
    """The code ends inside a comment or a string."""

    def __init__(self, what: str, newline_inside: bool = False) -> None:
        super().__init__(what)
        self.what = what
        self.newline_inside = newline_inside


_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUM = re.compile(r"\.?[0-9](?:[eEpP][+-]|[A-Za-z0-9_.']|)*")
_TWO = ("::", "->", "<<", "==", "!=", "<=", ">=", "&&", "||", "++", "--", "+=", "-=", "*=", "/=")
_RAW = re.compile(r'(?:u8|u|U|L)?R"([^()\\ ]{0,16})\(')


def tokenize(code: str, *, strict: bool = False) -> list[Token]:
    """C-family tokens. With ``strict``, an unterminated comment or string raises."""
    out: list[Token] = []
    i, n = 0, len(code)
    line_start = True  # only whitespace since the last newline (a '#' there is a directive)
    while i < n:
        c = code[i]
        if c == "\n":
            line_start = True
            i += 1
            continue
        if c in " \t\r\f\v":
            i += 1
            continue
        if c == "\\" and code.startswith("\n", i + 1):
            i += 2
            continue
        if code.startswith("//", i):
            j = code.find("\n", i)
            i = n if j < 0 else j
            continue
        if code.startswith("/*", i):
            j = code.find("*/", i + 2)
            if j < 0:
                if strict:
                    raise Unterminated("comment")
                return out
            i = j + 2
            continue
        if c == "#" and line_start:
            j = i
            while True:
                k = code.find("\n", j)
                if k < 0:
                    j = n
                    break
                if code[k - 1] == "\\":
                    j = k + 1
                    continue
                # a block comment opened on this line may continue it
                seg = code[i:k]
                if seg.count("/*") > seg.count("*/"):
                    m = code.find("*/", k)
                    if m < 0:
                        if strict:
                            raise Unterminated("comment")
                        j = n
                        break
                    j = m + 2
                    continue
                j = k
                break
            out.append(Token("pp", code[i:j], i, j))
            i = j
            continue
        line_start = False
        m = _RAW.match(code, i)
        if m:
            close = ")" + m.group(1) + '"'
            j = code.find(close, m.end())
            if j < 0:
                if strict:
                    raise Unterminated("string")
                return out
            out.append(Token("str", code[i:j + len(close)], i, j + len(close)))
            i = j + len(close)
            continue
        if c in "\"'":
            j = i + 1
            while j < n and code[j] != c:
                if code[j] == "\\":
                    j += 1
                elif code[j] == "\n":
                    if strict:
                        raise Unterminated("string", newline_inside=True)
                    break
                j += 1
            if j >= n:
                if strict:
                    raise Unterminated("string")
                return out
            out.append(Token("str", code[i:j + 1], i, j + 1))
            i = j + 1
            continue
        m = _ID.match(code, i)
        if m:
            # string prefixes: L"x", u8"x"
            if m.end() < n and code[m.end()] in "\"'" and m.group() in ("L", "u", "U", "u8"):
                i = m.end()
                continue
            out.append(Token("id", m.group(), i, m.end()))
            i = m.end()
            continue
        m = _NUM.match(code, i)
        if m and (c.isdigit() or (c == "." and m.end() > i + 1)):
            out.append(Token("num", m.group(), i, m.end()))
            i = m.end()
            continue
        two = code[i:i + 2]
        if two in _TWO:
            out.append(Token("op", two, i, i + 2))
            i += 2
            continue
        out.append(Token("op", c, i, i + 1))
        i += 1
    return out


# ----- magics -----------------------------------------------------------------------------------

MAGIC = re.compile(r"^[ \t]*//%[ \t]*([A-Za-z_]+)[ \t]*(.*)$", re.M)


class MagicError(ValueError):
    """An unknown magic or one whose value cannot be split."""


@dataclass(frozen=True)
class Flags:
    cflags: tuple[str, ...] = ()
    ldflags: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    verbose: bool = False


def parse_magics(code: str, flag_names: tuple[str, ...] = ("CFLAGS",)) -> tuple[str, Flags]:
    """The code with magic lines blanked (line numbers stay) and the flags they set."""
    cflags: list[str] = []
    ldflags: list[str] = []
    args: list[str] = []
    verbose = False
    for m in MAGIC.finditer(code):
        name, value = m.group(1).upper(), m.group(2).strip()
        try:
            words = shlex.split(value)
        except ValueError as e:
            raise MagicError(f"//% {name}: {e}") from None
        if name in flag_names:
            cflags += words
        elif name == "LDFLAGS":
            ldflags += words
        elif name == "ARGS":
            args += words
        elif name == "VERBOSE":
            verbose = True
        else:
            known = ", ".join((*flag_names, "LDFLAGS", "ARGS", "VERBOSE"))
            raise MagicError(f"unknown magic //% {name} (known: {known})")
    cleaned = MAGIC.sub("", code)
    return cleaned, Flags(tuple(cflags), tuple(ldflags), tuple(args), verbose)


# ----- items ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One top-level piece of a cell."""

    kind: str   # "pp", "func", "proto", "type", "var", "decl", "stmt", "main"
    start: int
    end: int
    keys: frozenset[str] = frozenset()
    add_semicolon: bool = False  # the cell ended without the ';' this item needs

    @property
    def is_declaration(self) -> bool:
        return self.kind in ("pp", "func", "proto", "type", "var", "decl")


OPEN, CLOSE = "([{", ")]}"
CONTROL = {"if", "for", "while", "switch", "else", "do", "try", "catch", "return", "goto", "break",
           "continue", "case", "default", "co_return", "co_yield", "throw", "delete", "new"}


class Syntax:
    """C's rules; C++ (and other C-family languages) override what differs."""

    name = "c"
    keywords: frozenset[str] = frozenset("""
        auto break case char const continue default do double else enum extern float for goto if inline
        int long register restrict return short signed sizeof static struct switch typedef union unsigned
        void volatile while _Alignas _Alignof _Atomic _Bool _Complex _Generic _Imaginary _Noreturn
        _Static_assert _Thread_local bool true false NULL""".split())
    #: a statement starting with one of these declares something
    decl_start: frozenset[str] = frozenset("""
        auto char const double enum extern float inline int long register restrict short signed static
        struct typedef union unsigned void volatile _Alignas _Atomic _Bool _Complex _Noreturn _Thread_local
        bool __attribute__ __extension__ typeof __typeof__""".split())
    type_tags: frozenset[str] = frozenset({"struct", "union", "enum"})
    overloads = False  # C++: functions are keyed by their parameter types too

    # ----- splitting ------------------------------------------------------------------------

    def split(self, code: str) -> list[Item]:
        toks = tokenize(code)
        items: list[Item] = []
        cur: list[Token] = []
        depth = 0
        block = ""  # what the top-level brace of the current item opened
        i = 0
        while i < len(toks):
            t = toks[i]
            i += 1
            if t.kind == "pp" and not cur:
                items.append(self._pp_item(t))
                continue
            cur.append(t)
            if t.kind != "op":
                continue
            if t.text in OPEN:
                if t.text == "{" and depth == 0 and not block:
                    block = self._block_kind(cur[:-1])
                depth += 1
            elif t.text in CLOSE:
                depth = max(0, depth - 1)
                if t.text == "}" and depth == 0 and block in ("stmt", "func", "ns", "try"):
                    nxt = toks[i].text if i < len(toks) else ""
                    if block == "stmt" and nxt == "else" or block == "try" and nxt == "catch":
                        continue
                    if block in ("func", "ns") and nxt == ";":
                        cur.append(toks[i])
                        i += 1
                    items.append(self._classify(code, cur, block))
                    cur, block = [], ""
            elif t.text == ";" and depth == 0:
                items.append(self._classify(code, cur, block))
                cur, block = [], ""
        if cur:
            item = self._classify(code, cur, block)
            last = cur[-1].text
            if item.kind != "func" and not (item.kind == "stmt" and last == "}") and last != ";":
                item = replace(item, add_semicolon=True)
            items.append(item)
        return items

    def _block_kind(self, before: list[Token]) -> str:
        if not before:
            return "stmt"
        first = before[0].text
        if first in CONTROL:
            return {"do": "do", "try": "try"}.get(first, "stmt")
        if first == "[":  # a lambda called in place: ends at its ';'
            return "lambda"
        if first == "extern" and len(before) == 2 and before[1].kind == "str":
            return "ns"
        if first == "namespace" or (first == "inline" and len(before) > 1 and before[1].text == "namespace"):
            return "ns"
        body = self._strip_template(before)
        if self._has_call_parens(body):
            return "func"
        return "init"  # struct/class/enum bodies, initializers: the item ends at ';'

    @staticmethod
    def _has_call_parens(toks: list[Token]) -> bool:
        """A '(' at depth 0, with no '=' before it: a function's head."""
        depth = 0
        for t in toks:
            if t.text == "=" and depth == 0:
                return False
            if t.text == "(" and depth == 0:
                return True
            if t.text in OPEN:
                depth += 1
            elif t.text in CLOSE:
                depth -= 1
        return False

    @staticmethod
    def _strip_template(toks: list[Token]) -> list[Token]:
        """``template <...>`` prefixes removed."""
        while len(toks) > 1 and toks[0].text == "template" and toks[1].text == "<":
            depth, j = 0, 1
            while j < len(toks):
                if toks[j].text == "<":
                    depth += 1
                elif toks[j].text == ">":
                    depth -= 1
                    if depth == 0:
                        break
                elif toks[j].text == ">>":
                    depth -= 2
                    if depth <= 0:
                        break
                j += 1
            toks = toks[j + 1:]
        return toks

    # ----- classifying ----------------------------------------------------------------------

    def _pp_item(self, t: Token) -> Item:
        text = re.sub(r"\s+", " ", t.text.replace("\\\n", " ")).strip()
        m = re.match(r"#\s*include\s*(\S+)", text)
        if m:
            return Item("pp", t.start, t.end, frozenset({f"include:{m.group(1)}"}))
        m = re.match(r"#\s*define\s+([A-Za-z_][A-Za-z0-9_]*)", text)
        if m:
            return Item("pp", t.start, t.end, frozenset({f"define:{m.group(1)}"}))
        return Item("pp", t.start, t.end, frozenset({f"pp:{text}"}))

    def _classify(self, code: str, toks: list[Token], block: str) -> Item:
        start, end = toks[0].start, toks[-1].end
        text_key = "text:" + " ".join(t.text for t in toks)
        if block in ("stmt", "do", "try", "lambda"):
            return Item("stmt", start, end)
        if block == "ns":
            name = toks[1].text if toks[0].text == "namespace" and len(toks) > 1 else ""
            return Item("decl", start, end, frozenset({f"ns:{name}" if name and name != "{" else text_key}))
        body = self._strip_template(toks)
        templated = len(body) != len(toks)
        if not body:
            return Item("stmt", start, end)
        if block == "func":
            name = self._func_name(body)
            if name == "main" and not templated:
                return Item("main", start, end)
            return Item("func", start, end, frozenset({"func:" + self._signature(body, name)}))
        first = body[0].text
        if first == "typedef":
            return Item("type", start, end, frozenset({f"typedef:{self._typedef_name(body)}"}))
        more = self._classify_more(body, text_key)
        if more is not None:
            kind, keys = more
            return Item(kind, start, end, keys)
        if first in self.type_tags and any(t.text == "{" for t in body):
            keys = {f"type:{body[1].text}" if body[1].kind == "id" else text_key}
            close = max(k for k, t in enumerate(body) if t.text == "}")
            keys |= {f"var:{n}" for n in self._declarator_names(body[close + 1:])}
            return Item("type", start, end, frozenset(keys))
        if first in self.type_tags and len(body) <= 3 and body[-1].text in (";", body[1].text):
            return Item("decl", start, end, frozenset({f"fwd:{body[1].text}"}))
        if first in ("static_assert", "_Static_assert"):
            return Item("decl", start, end, frozenset({text_key}))
        if self._declaration_start(body):
            name = self._prototype_name(body)
            if name:
                return Item("proto", start, end, frozenset({"proto:" + self._signature(body, name)}))
            names = self._declarator_names(body)
            return Item("var", start, end, frozenset(f"var:{n}" for n in names) or frozenset({text_key}))
        return Item("stmt", start, end)

    def _classify_more(self, body: list[Token], text_key: str) -> tuple[str, frozenset[str]] | None:
        """Language-specific declarations (C++: using, class); None when not one."""
        return None

    def _declaration_start(self, toks: list[Token]) -> bool:
        """``int x``, ``size_t n``, ``FILE *f``, ``std::vector<int> v``: a type, then a name."""
        j = 0
        if toks[0].text in self.decl_start:
            return True
        if j < len(toks) and toks[j].text == "::":
            j += 1
        if j >= len(toks) or toks[j].kind != "id" or toks[j].text in self.keywords:
            return False
        j += 1
        while j + 1 < len(toks) and toks[j].text == "::" and toks[j + 1].kind == "id":
            j += 2
        if j < len(toks) and toks[j].text == "<":
            depth = 0
            while j < len(toks):
                x = toks[j].text
                if x == "<":
                    depth += 1
                elif x == ">":
                    depth -= 1
                elif x == ">>":
                    depth -= 2
                elif x in (";", "{", "}", "<<") or toks[j].kind == "str":
                    return False
                j += 1
                if depth <= 0:
                    break
            if depth != 0:
                return False
        while j < len(toks) and toks[j].text in ("*", "&", "&&", "const", "volatile", "restrict"):
            j += 1
        return j < len(toks) and toks[j].kind == "id" and toks[j].text not in self.keywords

    @staticmethod
    def _top_paren(toks: list[Token]) -> int:
        depth = 0
        for k, t in enumerate(toks):
            if t.text == "(" and depth == 0:
                return k
            if t.text in OPEN:
                depth += 1
            elif t.text in CLOSE:
                depth -= 1
        return -1

    def _func_name(self, toks: list[Token]) -> str:
        k = self._top_paren(toks)
        if k <= 0:
            return ""
        # operator overloads: `operator+`, `operator()`
        for j in range(k - 1, max(-1, k - 4), -1):
            if toks[j].text == "operator":
                return "".join(t.text for t in toks[j:k])
        if toks[k - 1].text == ")" and k >= 2 and toks[k - 2].text == "(":
            j = k - 3
            if j >= 0 and toks[j].text == "operator":
                return "operator()"
        parts = [toks[k - 1].text]
        j = k - 2
        while j >= 1 and toks[j].text == "::" and toks[j - 1].kind == "id":
            parts.insert(0, toks[j - 1].text)
            j -= 2
        if j >= 0 and toks[j].text == "~":
            parts[-1] = "~" + parts[-1]
        return "::".join(parts)

    def _signature(self, toks: list[Token], name: str) -> str:
        """The key of a function: its name (C); its name and parameter types (C++)."""
        if not self.overloads:
            return name
        k = self._top_paren(toks)
        depth, params, cur = 0, [], []
        for t in toks[k + 1:]:
            if t.text in OPEN:
                depth += 1
            elif t.text in CLOSE:
                if depth == 0:
                    break
                depth -= 1
            if t.text == "," and depth == 0:
                params.append(cur)
                cur = []
            else:
                cur.append(t)
        if cur:
            params.append(cur)
        types = []
        for p in params:
            eq = next((j for j, t in enumerate(p) if t.text == "="), len(p))
            p = p[:eq]
            if len(p) >= 2 and p[-1].kind == "id" and p[-1].text not in self.keywords:
                p = p[:-1]
            types.append(" ".join(t.text for t in p))
        return f"{name}({', '.join(types)})"

    def _prototype_name(self, toks: list[Token]) -> str:
        """``int f(int x);`` -> f (``Point p(1, 2);`` is a variable)."""
        k = self._top_paren(toks)
        if k <= 0 or toks[k - 1].kind != "id" or any(t.text == "=" for t in toks[:k]):
            return ""
        inner = toks[k + 1:k + 3]
        if not inner or inner[0].text == ")":
            return self._func_name(toks)
        a = inner[0]
        if a.text in self.decl_start or a.text in ("void", "...") or a.text in self.type_tags:
            return self._func_name(toks)
        if a.kind == "id" and len(inner) > 1 and (inner[1].kind == "id" or inner[1].text in ("*", "&", "::", "<")):
            return self._func_name(toks)
        return ""

    def _typedef_name(self, toks: list[Token]) -> str:
        for j in range(len(toks) - 2):
            if toks[j].text == "(" and toks[j + 1].text == "*" and toks[j + 2].kind == "id":
                return toks[j + 2].text
        names = [t.text for t in toks if t.kind == "id" and t.text not in self.keywords]
        return names[-1] if names else ""

    def _declarator_names(self, toks: list[Token]) -> list[str]:
        parts: list[list[Token]] = [[]]
        depth = 0
        for t in toks:
            if t.text in OPEN:
                depth += 1
            elif t.text in CLOSE:
                depth -= 1
            if depth == 0 and t.text == ",":
                parts.append([])
            elif not (depth == 0 and t.text == ";"):
                parts[-1].append(t)
        names = []
        for p in parts:
            eq = next((j for j, t in enumerate(p) if t.text == "="), len(p))
            p = p[:eq]
            # drop trailing [..], {..} and constructor-argument (..) groups
            while p and p[-1].text in CLOSE:
                want = OPEN[CLOSE.index(p[-1].text)]
                depth, j = 0, len(p) - 1
                while j >= 0:
                    if p[j].text in CLOSE:
                        depth += 1
                    elif p[j].text in OPEN:
                        depth -= 1
                        if depth == 0:
                            break
                    j -= 1
                if j < 0 or p[j].text != want:
                    break
                if want == "(" and j + 1 < len(p) and p[j + 1].text in ("*", "&", "^"):
                    break
                p = p[:j]
            ids = [t.text for t in p if t.kind == "id" and t.text not in self.keywords]
            if ids:
                names.append(ids[-1])
        return names

    # ----- assembling -----------------------------------------------------------------------

    def line_directive(self, line: int, name: str) -> str:
        return f'#line {line} "{name}"\n'

    def assemble(self, decls: list["Decl"], cell: int, body: list[tuple[int, str]] | None) -> str:
        """The translation unit of a cell (languages with headers or a line map override it)."""
        return assemble(self, decls, cell, body)

    def whole_program(self, clean: str) -> str:
        """The source of a cell that defines main itself."""
        src = self.line_directive(1, CURRENT) + clean
        return src if src.endswith("\n") else src + "\n"

    def main_head(self) -> str:
        return "int main(int argc, char **argv) {\n(void)argc; (void)argv;\n"

    def main_tail(self) -> str:
        return "return 0;\n}\n"


# ----- the accumulated state ----------------------------------------------------------------------

CURRENT = "<cell>"  # the name of the running cell's lines in a build (stable, so builds cache)


def cell_name(n: int) -> str:
    return f"<cell {n}>"


@dataclass(frozen=True)
class Decl:
    keys: frozenset[str]
    text: str   # the item's source, indented as in its cell (so columns match)
    cell: int
    line: int
    flags: Flags


@dataclass
class Plan:
    """What one cell does: declare (compile to check, keep), run, or run a whole program."""

    kind: str                      # "empty", "declare", "run", "program"
    cell: int
    source: str = ""
    flags: Flags = field(default_factory=Flags)
    decls: list[Decl] = field(default_factory=list)  # the state after this cell, if it builds


def _line_of(code: str, pos: int) -> int:
    return code.count("\n", 0, pos) + 1


def _indented(code: str, item: Item) -> str:
    """The item's text, its first line padded as in the cell (columns in diagnostics match)."""
    ls = code.rfind("\n", 0, item.start) + 1
    pad = re.sub(r"[^\t]", " ", code[ls:item.start])
    return pad + code[item.start:item.end] + (";" if item.add_semicolon else "")


class Session:
    """The declarations kept so far, and how a new cell combines with them."""

    def __init__(self, syntax: Syntax, flag_names: tuple[str, ...] = ("CFLAGS",)) -> None:
        self.syntax = syntax
        self.flag_names = flag_names
        self.decls: list[Decl] = []
        self.count = 0

    def plan(self, code: str) -> Plan:
        """Raises MagicError for a bad magic."""
        self.count += 1
        n = self.count
        clean, flags = parse_magics(code, self.flag_names)
        items = self.syntax.split(clean)
        if not items:
            return Plan("empty", n, flags=flags, decls=list(self.decls))
        if any(it.kind == "main" for it in items):
            return Plan("program", n, self.syntax.whole_program(clean), flags, list(self.decls))
        running = any(not it.is_declaration for it in items)
        body: list[tuple[int, str]] = []
        decls = list(self.decls)
        for it in items:
            if running and (it.kind in ("stmt", "var")):
                body.append((_line_of(clean, it.start), _indented(clean, it)))
            else:
                decls = merge(decls, Decl(it.keys, _indented(clean, it), n, _line_of(clean, it.start), flags))
        flags = combined_flags(decls, flags)
        src = self.syntax.assemble(decls, n, body if running else None)
        return Plan("run" if running else "declare", n, src, flags, decls)

    def commit(self, plan: Plan) -> None:
        self.decls = plan.decls

    def declarations_of(self, name: str) -> list[Decl]:
        """The kept declarations that declare ``name`` (C++ overloads: all of them)."""
        out = []
        for d in self.decls:
            for key in d.keys:
                kind, _, what = key.partition(":")
                if kind in ("text", "pp", "include"):
                    continue
                if what == name or what.startswith(name + "("):
                    out.append(d)
                    break
        return out

    def identifiers(self) -> set[str]:
        out: set[str] = set()
        for d in self.decls:
            out |= {t.text for t in tokenize(d.text) if t.kind == "id"}
        return out


def merge(decls: list[Decl], new: Decl) -> list[Decl]:
    """The new declaration replaces every old one sharing a key (at the first one's place)."""
    out: list[Decl] = []
    placed = False
    for d in decls:
        if d.keys & new.keys:
            if not placed:
                out.append(new)
                placed = True
            continue
        out.append(d)
    if not placed:
        out.append(new)
    return out


def combined_flags(decls: list[Decl], cell: Flags) -> Flags:
    """The cell's flags after those of the cells whose declarations are kept (each once)."""
    cflags: list[str] = []
    ldflags: list[str] = []
    seen: set[int] = set()
    for d in decls:
        if d.cell in seen:
            continue
        seen.add(d.cell)
        cflags += [f for f in d.flags.cflags if f not in cflags]
        ldflags += [f for f in d.flags.ldflags if f not in ldflags]
    cflags += [f for f in cell.cflags if f not in cflags]
    ldflags += [f for f in cell.ldflags if f not in ldflags]
    return Flags(tuple(cflags), tuple(ldflags), cell.args, cell.verbose)


def assemble(syntax: Syntax, decls: list[Decl], cell: int, body: list[tuple[int, str]] | None) -> str:
    """One translation unit: the declarations, then (when running) main with the statements."""
    parts = []
    for d in decls:
        parts.append(syntax.line_directive(d.line, CURRENT if d.cell == cell else cell_name(d.cell)))
        parts.append(d.text + "\n")
    if body is not None:
        parts.append(syntax.line_directive(1, "<main>"))
        parts.append(syntax.main_head())
        for line, text in body:
            parts.append(syntax.line_directive(line, CURRENT))
            parts.append(text + "\n")
        parts.append(syntax.line_directive(1, "<main>"))
        parts.append(syntax.main_tail())
    return "".join(parts)


# ----- frontend queries -------------------------------------------------------------------------


def is_complete(code: str) -> tuple[str, str]:
    """("complete" | "incomplete" | "invalid", indent) from brackets, comments and strings."""
    try:
        toks = tokenize(code, strict=True)
    except Unterminated as e:
        return ("invalid", "") if e.newline_inside else ("incomplete", "")
    stack: list[str] = []
    for t in toks:
        if t.kind != "op":
            continue
        if t.text in OPEN:
            stack.append(t.text)
        elif t.text in CLOSE:
            if not stack or OPEN.index(stack[-1]) != CLOSE.index(t.text):
                return "invalid", ""
            stack.pop()
    if stack:
        return "incomplete", "    " * stack.count("{")
    if code.rstrip(" \t").endswith("\\"):
        return "incomplete", ""
    return "complete", ""


def name_at(code: str, cursor: int) -> str:
    """The identifier the cursor is in or just after (``std::cout`` -> ``cout``)."""
    left = re.search(r"[A-Za-z_][A-Za-z0-9_]*$", code[:cursor])
    right = re.match(r"[A-Za-z0-9_]*", code[cursor:])
    name = (left.group() if left else "") + (right.group() if right else "")
    return name if re.match(r"[A-Za-z_]", name) else ""


def header_declaration(text: str, name: str) -> str:
    """The first declaration of ``name`` as a function in preprocessed header text, tidied."""
    m = re.search(rf"[^;{{}}]*\b{re.escape(name)}\s*\([^;{{]*[;{{]", text)
    if not m:
        return ""
    decl = re.sub(r"\s+", " ", m.group()).strip().rstrip("{").strip()
    decl = re.sub(r"\s*\b(__THROW|__wur)\b", "", _drop_calls(decl, ("__attribute__", "__asm__", "__nonnull")))
    decl = re.sub(r"\s+;", ";", decl)
    return decl if decl.endswith(";") else decl + ";"


def _drop_calls(text: str, names: tuple[str, ...]) -> str:
    """``text`` without ``name (...)`` groups (balanced parentheses) of the given names."""
    for name in names:
        while True:
            m = re.search(rf"\s*\b{name}\s*\(", text)
            if not m:
                break
            depth, j = 0, m.end() - 1
            while j < len(text):
                depth += {"(": 1, ")": -1}.get(text[j], 0)
                if depth == 0:
                    break
                j += 1
            text = text[:m.start()] + text[j + 1:]
    return text


def completion_prefix(code: str, cursor: int) -> tuple[int, str]:
    m = re.search(r"[A-Za-z_][A-Za-z0-9_]*$", code[:cursor])
    return (m.start(), m.group()) if m else (cursor, "")
