# SPDX-License-Identifier: LGPL-3.0-or-later
"""Rust's cell logic for the compile-and-run engine (pure: no compiler here; the kernel tests
in test_lang_rust.py compile and run what this assembles)."""

from __future__ import annotations

import re

from jupyter_backendai.kernels.compiled import rust
from jupyter_backendai.kernels.compiled.session import Session

CELL = '''use std::collections::HashMap;
use std::fmt::{self, Display};

/// A point.
#[derive(Debug, Clone)]
pub struct Point { x: i32, y: i32 }

impl Point {
    fn norm2(&self) -> i32 { self.x * self.x + self.y * self.y }
}
impl Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result { write!(f, "({}, {})", self.x, self.y) }
}
const N: usize = 3;
static mut COUNT: i32 = 0;
fn square<'a>(x: &'a i32) -> i32 { x * x }
macro_rules! twice { ($e:expr) => { $e * 2 }; }
let p = Point { x: 1, y: 2 };
println!("{} {}", p, '}');
for i in 0..N { println!("{}", i); }
let s = r#"a { "string"#;
p.norm2() + twice!(1)
'''


def test_items_and_statements_are_told_apart() -> None:
    units = rust.split_cell(CELL)
    assert [(u.kind, u.names) for u in units] == [
        ("item", ("use std::collections::HashMap",)), ("item", ("use std::fmt::{self, Display}",)),
        ("item", ("Point",)), ("item", ("impl Point::norm2",)), ("item", ("impl Display for Point",)),
        ("item", ("N",)), ("item", ("COUNT",)), ("item", ("square",)), ("item", ("macro twice",)),
        ("stmt", ())]
    assert units[2].text.startswith("/// A point.\n#[derive") and units[2].line == 4
    assert units[-1].line == 18 and units[-1].text.rstrip().endswith("twice!(1)")


def test_statements_between_items_and_blocks() -> None:
    code = "let mut v = vec![1];\nif v.len() > 0 { v.push(2) }\nfn f() {}\nv.push(3);\nunsafe { COUNT += 1; }\n"
    assert [(u.kind, u.names, u.line) for u in rust.split_cell(code)] == [
        ("stmt", (), 1), ("item", ("f",), 3), ("stmt", (), 4)]


def session() -> Session:
    return Session(rust.RUST.syntax, rust.RUST.flag_magics)


def test_a_redefinition_replaces_the_old_item() -> None:
    s = session()
    s.commit(s.plan("struct P { x: i32 }\nimpl P { fn a(&self) {} }\nimpl P { fn b(&self) {} }\nfn f() {}\n"))
    plan = s.plan("impl P { fn a(&self) -> i32 { 1 } }\nfn f() -> i32 { 2 }\n#![allow(dead_code)]\n")
    assert plan.kind == "declare"
    s.commit(plan)
    assert [d.text for d in s.decls] == [
        "struct P { x: i32 }", "impl P { fn a(&self) -> i32 { 1 } }", "impl P { fn b(&self) {} }",
        "fn f() -> i32 { 2 }", "#![allow(dead_code)]"]
    src = s.plan("fn g() {}").source
    assert src.index("#![allow(dead_code)]") < src.index("struct P")


def test_program_tail_expression_and_line_map() -> None:
    s = session()
    s.commit(s.plan("fn sq(x: i32) -> i32 { x * x }\n"))
    plan = s.plan("let a = 3;\nsq(a)\n")
    assert plan.kind == "run"
    src = plan.source.split("\n")
    lines = rust.line_map(plan.source)
    assert "#![allow(unused)]" in src[:2]
    assert lines[src.index("fn sq(x: i32) -> i32 { x * x }")] == ("<cell 1>", 1)
    assert lines[src.index("let a = 3;")] == ("<cell>", 1)
    assert lines[src.index("sq(a)")] == ("<cell>", 2)
    assert lines[src.index("fn main() { bai::__line_map(__BAI_LINES);")] is None
    assert "__bai_show()" in plan.source and "bai::__result(&s)" in plan.source
    assert [d.cell for d in s.decls] == [1]  # statements are not kept
    assert "__result" not in s.plan("let a = 3;\n").source


def test_panic_table_agrees_with_the_line_map() -> None:
    """The table the program's panic hook maps locations with says what line_map says."""
    s = session()
    s.commit(s.plan("struct P { x: i32 }\n\nfn f() -> i32 {\n    1\n}\n"))
    source = s.plan("let v: Vec<i32> = Vec::new();\nprintln!(\"{}\", v[3]);\nv.len()\n").source
    table = re.search(r"static __BAI_LINES: &\[\(u32, &str, u32\)\] = &\[(.*)\];\n$", source).group(1)
    segments = [(int(a), b, int(c)) for a, b, c in re.findall(r'\((\d+), "([^"]*)", (\d+)\)', table)]
    by_table = {}
    for line, text in enumerate(source.split("\n"), 1):
        seg = max((sg for sg in segments if sg[0] <= line), default=None)
        if seg and seg[1] and not text.startswith("// @bai-line"):  # (a comment never panics)
            by_table[line] = (seg[1], seg[2] + line - seg[0])
    by_map = {i + 1: w for i, w in enumerate(rust.line_map(source)) if w is not None}
    assert by_table == by_map
    assert by_map[source.split("\n").index('println!("{}", v[3]);') + 1] == ("<cell>", 2)


def test_whole_program_runs_alone() -> None:
    s = session()
    s.commit(s.plan("fn kept() {}\n"))
    code = 'use std::io;\n\nfn main() {\n    println!("hi");\n}\n'
    plan = s.plan(code)
    assert plan.kind == "program"
    assert "kept" not in plan.source
    assert rust.line_map(plan.source)[1:] == [("<cell>", n) for n in range(1, 7)]


def test_diagnostics_name_cell_lines() -> None:
    s = session()
    s.commit(s.plan("struct Kept;\n"))
    source = s.plan("struct S;\nlet x = 1;\nlet y: i32 = \"s\";\n").source
    line = source.split("\n").index('let y: i32 = "s";') + 1
    kept = source.split("\n").index("struct Kept;") + 1
    text = (f"error[E0308]: mismatched types\n  --> cell.rs:{line}:14\n   |\n{line:>2} | let y: i32 = \"s\";\n"
            "   |        ---   ^^^ expected `i32`, found `&str`\n"
            "  ::: /usr/src/rustc/library/core/src/lib.rs:12:5\n12 | std code\n"
            f"note: here\n  --> cell.rs:{kept}:1\n")
    mapped = rust.map_diagnostics(text, source)
    assert "  --> <cell>:3:14\n" in mapped
    assert "\n 3 | let y: i32" in mapped
    assert "\n12 | std code" in mapped  # another file's gutter stays
    assert "  --> <cell 1>:1:1" in mapped
    panic = f"thread 'main' panicked at 'boom', cell.rs:{line}:5\n"
    assert rust.map_diagnostics(panic, source) == "thread 'main' panicked at 'boom', <cell>:3:5\n"


def test_rustc_command_line() -> None:
    argv = rust.RUST.compile_argv("cell.rs", "prog", ("-O",), ("-lm", "-L", "/opt/x", "-static"))
    assert argv[0] == "rustc" and "--edition" in argv and f"bai={rust.BAI_RLIB}" in argv
    assert \
        argv[argv.index("-O"):] == ["-O", "-o", "prog", "cell.rs", "-l", "m", "-L", "/opt/x", "-C", "link-arg=-static"]
    assert "--emit=metadata" in rust.RUST.compile_argv("cell.rs", None, (), ())


def test_is_complete() -> None:
    assert rust.is_complete("let x = 1;") == "complete"
    assert rust.is_complete("fn f() {") == "incomplete"
    assert rust.is_complete('let s = "abc') == "incomplete"
    assert rust.is_complete("let c = '}';") == "complete"
    assert rust.is_complete("f())") == "invalid"


def test_completion() -> None:
    kept = ["fn compute_total() {}", "macro_rules! my_mac { () => {} }"]
    assert rust.complete("compute_t", 9, kept) == (["compute_total"], 0, 9)
    assert "println!" in rust.complete("prin", 4, kept)[0]
    assert "my_mac!" in rust.complete("my_", 3, kept)[0]
    assert rust.complete("use std::collections::Hash", 26, kept) == (["HashMap", "HashSet"], 22, 26)
    matches, start, _ = rust.complete("let value = 1;\nval", 18, kept)
    assert matches == ["value"] and start == 15
