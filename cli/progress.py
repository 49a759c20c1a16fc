"""What a person sees while an export runs, and the one-screen summary at its end."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from flows.export import ExportSummary, StreamResult
from models import from_ms, now_ms


class RichExportProgress:
    """A live line per stream: partitions, windows and rows as they land."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._progress = Progress(
            TextColumn("[bold]{task.description:<18}"),
            BarColumn(bar_width=24),
            TextColumn("{task.fields[windows]:>6} windows"),
            TextColumn("{task.fields[rows]:>10,} rows"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._rows: dict[str, int] = {}
        self._windows: dict[str, int] = {}
        self._waits: TaskID | None = None

    def __enter__(self) -> RichExportProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()

    def stream_started(self, stream: str, partitions: int) -> None:
        if stream not in self._tasks:
            self._rows[stream] = self._windows[stream] = 0
            self._tasks[stream] = self._progress.add_task(stream, total=None, rows=0, windows=0)

    def window_done(self, stream: str, rows: int) -> None:
        self.stream_started(stream, 0)
        self._rows[stream] += rows
        self._windows[stream] += 1
        self._progress.update(
            self._tasks[stream], rows=self._rows[stream], windows=self._windows[stream]
        )

    def stream_finished(self, stream: str, result: StreamResult) -> None:
        self.stream_started(stream, result.partitions)
        self._progress.update(self._tasks[stream], total=1, completed=1)

    def waiting(self, reason: str, seconds: float) -> None:
        """One line below the streams: what the run waits for, and until when (UTC)."""
        until = from_ms(now_ms() + int(seconds * 1000)).strftime("%H:%M:%S")
        text = f"waiting for {reason} until {until} UTC"
        if self._waits is None:
            self._waits = self._progress.add_task(text, total=None, rows=0, windows=0)
        self._progress.update(self._waits, description=text)


def summary_table(summary: ExportSummary) -> Table:
    cutoff = from_ms(summary.cutoff_ms).isoformat(timespec="seconds")
    table = Table(title=f"export of {summary.account} up to {cutoff} (run {summary.run_id})")
    for column in ("stream", "partitions", "windows", "rows read", "rows written"):
        table.add_column(column, justify="left" if column == "stream" else "right")
    for result in summary.streams.values():
        table.add_row(
            result.stream,
            str(result.partitions),
            str(result.windows),
            f"{result.rows_read:,}",
            f"{result.rows_written:,}",
        )
    table.caption = (
        f"{summary.files} files, {summary.requests} requests, weight {summary.weight}, "
        f"{summary.retries} retries, {summary.duration_s:.1f} s"
    )
    return table


def cost_table(summary: ExportSummary) -> Table | None:
    """Requests and weight each stream spent beside what its plan foresaw (None: no plan)."""
    if summary.planned_requests is None:
        return None
    table = Table(title="spent against planned")
    for column in ("stream", "requests", "planned", "weight", "planned "):
        table.add_column(column, justify="left" if column == "stream" else "right")
    for result in summary.streams.values():
        table.add_row(
            result.stream,
            f"{result.requests:,}",
            _figure(result.planned_requests),
            f"{result.weight:,}",
            _figure(result.planned_weight),
        )
    table.add_section()
    table.add_row(
        "total",
        f"{summary.requests:,}",
        _figure(summary.planned_requests),
        f"{summary.weight:,}",
        _figure(summary.planned_weight),
    )
    table.caption = "the total counts calls of no stream too (the server time, the pairs)"
    return table


def _figure(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"
