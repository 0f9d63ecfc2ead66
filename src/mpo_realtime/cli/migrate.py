"""``mpo migrate-events``: loaded on first use by the ``mpo`` app (``cli/main.py``); the
work is ``store/migrate.py``."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import typer
from rich.console import Console

from mpo_realtime.domain.errors import MpoError

__all__ = ["migrate_events_command", "register"]

console = Console(soft_wrap=True, highlight=False)


def migrate_events_command(
    source: Annotated[
        str, typer.Option("--from", help="The embedded store: duckdb:///path/to/events.duckdb.")
    ],
    target: Annotated[
        str,
        typer.Option(
            "--to", help="The ClickHouse store: clickhouse://[user:password@]host:port/database."
        ),
    ],
) -> None:
    """Copy the embedded event store's roll-up into ClickHouse, one UTC day at a time.

    Idempotent and resumable: days copied before are checked and skipped, a day left half
    copied is copied again. Every day is verified (displays, clicks, cost to the last digit).
    """
    from mpo_realtime.store.migrate import migrate_events

    counts = [0, 0, 0, 0]  # source rows, roll-up rows, displays, clicks
    cost = Decimal(0)
    try:
        for day in migrate_events(source, target):
            console.print(
                f"{day.day.date()}  {day.action:<9} {day.source_rows:>10} rows -> "
                f"{day.target_rows:>10} roll-up rows  displays={day.displays} "
                f"clicks={day.clicks} cost={day.cost}",
                markup=False,
            )
            for i, value in enumerate((day.source_rows, day.target_rows, day.displays, day.clicks)):
                counts[i] += value
            cost += day.cost
    except MpoError as exc:
        console.print(f"error: {exc}", markup=False, style="red")
        raise typer.Exit(1) from None
    console.print(
        f"verified: {counts[0]} source rows as {counts[1]} roll-up rows in ClickHouse, "
        f"displays={counts[2]} clicks={counts[3]} cost={cost} (equal, day by day)",
        markup=False,
    )


def register(app: typer.Typer) -> None:
    app.command("migrate-events")(migrate_events_command)
