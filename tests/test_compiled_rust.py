# SPDX-License-Identifier: LGPL-3.0-or-later
"""Rust's cell logic for the compile-and-run engine (pure: no compiler here; the kernel tests
in test_lang_rust.py compile and run what this assembles)."""

from __future__ import annotations

from jupyter_backendai.kernels.compiled import rust

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


def test_a_redefinition_replaces_the_old_item() -> None:
    st = rust.RustState()
    st.add(1, rust.split_cell("struct P { x: i32 }\nimpl P { fn a(&self) {} }\nimpl P { fn b(&self) {} }\nfn f() {}\n"))
    st.add(2, rust.split_cell("impl P { fn a(&self) -> i32 { 1 } }\nfn f() -> i32 { 2 }\n#![allow(dead_code)]\n"))
    assert [d.unit.text for d in st.items] == [
        "struct P { x: i32 }", "impl P { fn b(&self) {} }", "impl P { fn a(&self) -> i32 { 1 } }",
        "fn f() -> i32 { 2 }"]
    assert list(st.attrs) == ["#![allow(dead_code)]"]


def test_program_tail_expression_and_line_map() -> None:
    st = rust.RustState()
    st.add(1, rust.split_cell("fn sq(x: i32) -> i32 { x * x }\n"))
    prog = rust.assemble(st, 2, rust.split_cell("let a = 3;\nsq(a)\n"))
    src = prog.source.split("\n")
    assert src[0] == "#![allow(unused)]" and prog.has_result
    assert prog.lines[src.index("fn sq(x: i32) -> i32 { x * x }")] == (1, 1)
    assert prog.lines[src.index("let a = 3;")] == (2, 1)
    assert prog.lines[src.index("sq(a)")] == (2, 2)
    assert "__bai_show()" in prog.source and "bai::__result(&s)" in prog.source
    assert st.items and len(st.items) == 1  # assembling does not keep the cell's items
    assert not rust.assemble(st, 3, rust.split_cell("let a = 3;\n")).has_result


def test_whole_program_runs_alone() -> None:
    st = rust.RustState()
    st.add(1, rust.split_cell("fn kept() {}\n"))
    code = 'use std::io;\n\nfn main() {\n    println!("hi");\n}\n'
    units = rust.split_cell(code)
    assert rust.is_whole_program(units)
    prog = rust.assemble(st, 4, units)
    assert "kept" not in prog.source
    assert prog.source == code and prog.lines[2] == (4, 3)


def test_diagnostics_name_cell_lines() -> None:
    st = rust.RustState()
    prog = rust.assemble(st, 3, rust.split_cell("struct S;\nlet x = 1;\nlet y: i32 = \"s\";\n"))
    line = prog.source.split("\n").index('let y: i32 = "s";') + 1
    text = (f"error[E0308]: mismatched types\n  --> main.rs:{line}:14\n   |\n{line:>2} | let y: i32 = \"s\";\n"
            "   |        ---   ^^^ expected `i32`, found `&str`\n"
            "  ::: /usr/src/rustc/library/core/src/lib.rs:12:5\n12 | std code\n")
    mapped = rust.map_diagnostics(text, prog)
    assert "  --> cell[3]:3:14\n" in mapped
    assert "\n 3 | let y: i32" in mapped
    assert "\n12 | std code" in mapped  # another file's gutter stays
    panic = f"thread 'main' panicked at 'boom', main.rs:{line}:5\n"
    assert rust.map_diagnostics(panic, prog) == "thread 'main' panicked at 'boom', cell[3]:3:5\n"


def test_is_complete() -> None:
    assert rust.is_complete("let x = 1;") == "complete"
    assert rust.is_complete("fn f() {") == "incomplete"
    assert rust.is_complete('let s = "abc') == "incomplete"
    assert rust.is_complete("let c = '}';") == "complete"
    assert rust.is_complete("f())") == "invalid"


def test_completion() -> None:
    st = rust.RustState()
    st.add(1, rust.split_cell("fn compute_total() {}\nmacro_rules! my_mac { () => {} }\n"))
    assert rust.complete("compute_t", 9, st) == (["compute_total"], 0, 9)
    assert "println!" in rust.complete("prin", 4, st)[0]
    assert "my_mac!" in rust.complete("my_", 3, st)[0]
    assert rust.complete("use std::collections::Hash", 26, st) == (["HashMap", "HashSet"], 22, 26)
    matches, start, _ = rust.complete("let value = 1;\nval", 18, st)
    assert matches == ["value"] and start == 15
