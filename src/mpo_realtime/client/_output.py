"""What ``mpo report`` shows: a status line, a table, a summary, or the raw file."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from mpo_realtime.client._models import ExportStatus
from mpo_realtime.client._result import INTEGER_COLUMNS, ExportResult, Value

if TYPE_CHECKING:
    from rich.progress import Progress

__all__ = ["StatusLine", "deliver"]


class StatusLine:
    """A transient Rich status line (status, elapsed time) on a terminal's stderr.

    ``stop()`` clears it before anything else is printed on the terminal.
    """

    def __init__(self, enabled: bool) -> None:
        self.progress: Progress | None = None
        if enabled:
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
            self.progress = Progress(*columns, console=Console(stderr=True), transient=True)
            self.task = self.progress.add_task("creating the export", total=None)

    def __enter__(self) -> StatusLine:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def on_status(self) -> Callable[[ExportStatus], None] | None:
        return self.show if self.progress is not None else None

    def show(self, status: ExportStatus) -> None:
        if self.progress is not None:
            step = "downloading" if status.done else status.status.value
            self.progress.update(self.task, description=f"{step} · export {status.export_id}")

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def _cell(value: Value) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return "" if value is None else str(value)


def _print_table(result: ExportResult, limit: int) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    columns = result.columns()
    total = result.row_count
    shown = min(limit, total) if total is not None else limit
    caption = f"{shown:,} of {total:,} rows" if total is not None else f"first {shown} rows"
    table = Table(caption=f"{caption} · export {result.export_id} · {result.file_format}")
    for column in columns:
        numeric = column in INTEGER_COLUMNS or column == "cost"
        table.add_column(column, justify="right" if numeric else "left")
    for row in islice(result.iter_rows(), limit):
        table.add_row(*(Text(_cell(row[column])) for column in columns))
    Console().print(table)


def _summary(result: ExportResult, where: str) -> None:
    if sys.stderr.isatty():
        rows = f"{result.row_count:,} rows" if result.row_count is not None else "a file"
        size = f"{result.size:,} bytes"
        typer.echo(f"{rows} ({size}) -> {where} · export {result.export_id}", err=True)


def deliver(
    fetch: Callable[..., ExportResult],
    line: StatusLine,
    *,
    output: str | None,
    rows: int,
    quiet: bool,
) -> None:
    """The file to ``output``, to a pipe raw, or as a table on a terminal."""
    if output == "-" or (output is None and not sys.stdout.isatty()):
        fetch(file=sys.stdout.buffer)
        sys.stdout.buffer.flush()
    elif output is None:
        result = fetch()
        line.stop()
        _print_table(result, rows)
    else:
        result = fetch(path=Path(output))
        line.stop()
        if not quiet:
            _summary(result, output)
