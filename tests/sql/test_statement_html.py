"""The monthly statement, opened in a real headless Chromium: offline, no errors, charts drawn."""

from __future__ import annotations

from pathlib import Path

import pytest

from sql.reports import report
from tests.browser import ensure_chromium, open_page
from tests.sql.conftest import BuiltLake


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's chromium; the test installs it when it is missing (CI: clean Debian, root)."""
    return ensure_chromium()


def test_the_statement_opens_offline_with_its_charts_drawn(
    chromium: str, base_lake: BuiltLake, tmp_path: Path
) -> None:
    paths = report(base_lake.data_dir, "2024-01", tmp_path)
    statement = tmp_path / "acct1" / "2024-01" / "statement.html"
    assert statement in paths
    text = statement.read_text()
    assert "<script src=" not in text and "Plotly.newPlot" in text

    visit = open_page(statement, chromium)

    assert visit.requests == [statement.resolve().as_uri()]  # the file itself, nothing else
    assert visit.remote_requests == [] and visit.errors == []
    # USDT and BTC over the month, then the interest by day: each drew its marks
    assert len(visit.marks_per_chart) == 3 and all(n > 0 for n in visit.marks_per_chart)
    assert visit.screenshot.startswith(b"\x89PNG")
    (tmp_path / "statement.png").write_bytes(visit.screenshot)
