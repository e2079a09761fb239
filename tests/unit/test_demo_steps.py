"""The demo says what it is doing when its output is not a terminal (piped, CI, a log file)."""

from __future__ import annotations

import io

from rich.console import Console

from local.demo import _step


def test_a_piped_demo_prints_each_step_and_its_time() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=120)
    with _step(console, "reading the stream back"):
        console.print("inside")
    lines = out.getvalue().splitlines()
    assert lines[0] == "reading the stream back ..."
    assert lines[1] == "inside"
    assert lines[2].startswith("  done in ") and lines[2].endswith(" s")


def test_a_terminal_gets_a_spinner_not_step_lines() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    with _step(console, "reading the stream back"):
        pass
    assert "done in" not in out.getvalue()
