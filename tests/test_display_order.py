"""The wrapper's display ordering (kernels/ordering.py): pure logic, no kernel needed."""

from __future__ import annotations

from jupyter_backendai.kernels.ordering import DisplayOrder, marker


def frame(n: int | None) -> dict:
    f = {"type": "display", "data": {"text/plain": f"d{n}"}}
    if n is not None:
        f["sync"] = n
    return f


def render(events: list) -> list[str]:
    return [t if kind == "text" else f"<{d['data']['text/plain']}>" for kind, t in events for d in [t]]


def run(*steps: tuple[str, object]) -> str:
    order, out = DisplayOrder(), []
    for kind, item in steps:
        out += order.stdout(item) if kind == "out" else order.display(item)  # type: ignore[arg-type]
    out += order.flush()
    return "".join(render(out))


def test_marker_read_before_its_frame_holds_the_text_after_it() -> None:
    order = DisplayOrder()
    assert render(order.stdout(f"before\n{marker(1)}after\n")) == ["before\n"]
    assert render(order.display(frame(1))) == ["<d1>", "after\n"]
    assert order.flush() == []


def test_frame_before_its_marker_waits_for_the_marker() -> None:
    assert run(("display", frame(1)), ("out", "before\n"), ("out", marker(1) + "after\n")) == "before\n<d1>after\n"


def test_marker_split_across_chunks() -> None:
    m = marker(12)
    for cut in range(1, len(m)):
        got = run(("out", "a" + m[:cut]), ("display", frame(12)), ("out", m[cut:] + "b"))
        assert got == "a<d12>b", (cut, got)


def test_several_displays_interleaved_with_text() -> None:
    got = run(("out", f"1{marker(1)}2{marker(2)}3"), ("display", frame(1)), ("display", frame(2)), ("out", "4"))
    assert got == "1<d1>2<d2>34"


def test_unsynced_display_goes_out_at_once_and_plain_escapes_pass() -> None:
    assert run(("out", "x"), ("display", frame(None)), ("out", "\x1b[1mbold\x1b[0m")) == "x<dNone>\x1b[1mbold\x1b[0m"


def test_flush_gives_back_what_a_lost_marker_or_frame_held() -> None:
    assert run(("display", frame(3)), ("out", "text")) == "text<d3>"        # marker never printed
    assert run(("out", f"a{marker(4)}b")) == "ab"                           # frame never sent
