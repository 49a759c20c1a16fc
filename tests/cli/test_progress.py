"""What a person sees while an export runs: streams as they land, and what a run waits for."""

from __future__ import annotations

import io
import re

from rich.console import Console

from cli.progress import RichExportProgress


def test_the_display_says_what_a_run_waits_for_and_until_when() -> None:
    console = Console(record=True, file=io.StringIO(), width=140)
    with RichExportProgress(console) as display:
        display.stream_started("interest", 1)
        display.window_done("interest", 100)
        display.waiting("the weight budget's window", 42.0)
    text = console.export_text()
    assert re.search(r"waiting for the weight budget's window until \d\d:\d\d:\d\d UTC", text)
    assert "interest" in text
