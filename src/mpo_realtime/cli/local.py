"""``mpo demo-env`` and ``mpo simulate``: the demo's credentials and simulated traffic."""

from __future__ import annotations

import contextlib
import shlex
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mpo_realtime.cli.common import DATA_DIR, DataDir, errors_to_exit, fail, make_settings, say

if TYPE_CHECKING:
    from mpo_realtime.settings import Settings

__all__ = ["demo_env", "simulate"]


@errors_to_exit
def demo_env(data_dir: DataDir = DATA_DIR) -> None:
    """Print the demo client's credentials as shell export lines: eval "$(mpo demo-env)".

    Sets MPO_CLIENT_ID and MPO_CLIENT_SECRET (which mpo simulate --target reads) and
    MPO_ADVERTISER_IDS, from the demo-client.json that mpo serve --demo writes.
    """
    import orjson

    path = make_settings(data_dir).demo_client_path
    if not path.is_file():
        fail(
            f"no demo client in {data_dir}: start the demo first (make run, or mpo serve --demo)",
            code=1,
        )
    saved = orjson.loads(path.read_bytes())
    values = {
        "MPO_CLIENT_ID": str(saved["client_id"]),
        "MPO_CLIENT_SECRET": str(saved["client_secret"]),
        "MPO_ADVERTISER_IDS": ",".join(str(a) for a in saved["advertiser_ids"]),
    }
    for name, value in values.items():
        typer.echo(f"export {name}={shlex.quote(value)}")


@errors_to_exit
def simulate(
    data_dir: DataDir = DATA_DIR,
    seed: Annotated[int, typer.Option(help="Seed: same seed, same traffic.")] = 7,
    hours: Annotated[
        float, typer.Option(help="Hours of history to back-fill first (local store only).")
    ] = 0.0,
    rate: Annotated[
        int,
        typer.Option(
            help="Live events per second; 0: none locally, as fast as possible with --target."
        ),
    ] = 0,
    duration: Annotated[
        float,
        typer.Option(help="Seconds of live traffic (rate x duration events); 0: forever."),
    ] = 0.0,
    target: Annotated[
        str | None,
        typer.Option(
            help="Base URL of a running server, e.g. http://127.0.0.1:8080. "
            "Without it: the local store in --data-dir."
        ),
    ] = None,
    client_id: Annotated[
        str | None,
        typer.Option(envvar="MPO_CLIENT_ID", help="With --target: a client with the ingest role."),
    ] = None,
    client_secret: Annotated[
        str | None,
        typer.Option(envvar="MPO_CLIENT_SECRET", help="With --target: that client's secret."),
    ] = None,
    batch: Annotated[int, typer.Option(help="Most events per HTTP request.")] = 1000,
) -> None:
    """Generate realistic marketplace traffic into a local store or a running server.

    With --rate and --duration, exactly rate x duration events are sent (the last
    batch is partial).
    """
    from mpo_realtime.store.simulator import Simulator, World

    simulator = Simulator(World.generate(seed=seed), seed=seed)
    total = round(rate * duration) if rate and duration else None
    if target is None:
        _simulate_local(make_settings(data_dir), simulator, hours=hours, rate=rate, total=total)
        return
    if hours:
        fail("--hours back-fills a local store only; against a server, use --rate")
    if not client_id or not client_secret:
        fail("--client-id and --client-secret (of a client with the ingest role) are needed")
    from mpo_realtime.client.traffic import send_events

    sent = send_events(
        target,
        client_id,
        client_secret,
        simulator,
        rate=rate,
        total=total,
        duration=duration,
        batch=batch,
    )
    say(f"sent {sent:,} events")


def _simulate_local(
    settings: Settings, simulator: Any, *, hours: float, rate: int, total: int | None
) -> None:
    import asyncio

    from mpo_realtime import demo as demo_mod
    from mpo_realtime.services import Services

    services = Services.open(settings)
    try:
        if hours:
            now = datetime.now(UTC)
            say(demo_mod.backfill(services, simulator, hours=hours, now=now).describe(now))
        if rate:
            task = demo_mod.live_traffic(services, simulator, events_per_second=rate, total=total)
            with contextlib.suppress(KeyboardInterrupt):
                say(f"stored {asyncio.run(task):,} events")
    finally:
        services.close()
