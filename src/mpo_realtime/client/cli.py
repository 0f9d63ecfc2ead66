"""The ``mpo`` command line: thin wrappers over the services; errors map to exit codes here."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import httpx
import orjson
import typer
from rich.console import Console

from mpo_realtime.client import report_cli
from mpo_realtime.domain.errors import MpoError
from mpo_realtime.domain.jobs import Role
from mpo_realtime.settings import Settings

if TYPE_CHECKING:
    from mpo_realtime.exports.clients import ClientService

__all__ = ["app", "main"]

app = typer.Typer(help="mpo-realtime: real-time marketplace ad reporting.", no_args_is_help=True)
clients_app = typer.Typer(help="Manage API clients (credentials, scope, roles).")
app.add_typer(clients_app, name="clients")
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", envvar="MPO_DATA_DIR", help="Directory for local state [./var]."),
]
F = TypeVar("F", bound=Callable[..., Any])


def _settings(data_dir: Path | None, **overrides: Any) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    return Settings(**values)


def _errors_to_exit(fn: F) -> F:
    """Print the chain of causes of an mpo error and exit 1, instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (MpoError, httpx.HTTPError) as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


@app.command()
@_errors_to_exit
def serve(
    data_dir: DataDir = None,
    host: Annotated[str | None, typer.Option(envvar="MPO_HOST", help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(envvar="MPO_PORT", help="Bind port.")] = None,
    demo: Annotated[bool, typer.Option(help="Back-fill history and run live traffic.")] = False,
    demo_hours: Annotated[float, typer.Option(help="Hours of history for --demo.")] = 3.0,
    demo_rate: Annotated[int, typer.Option(help="Live events per second for --demo.")] = 200,
) -> None:
    """Run the whole system (HTTP API, ingestion, export runners, sweeper)."""
    import uvicorn

    from mpo_realtime import demo as demo_mod
    from mpo_realtime.api.app import BackgroundTask, create_app
    from mpo_realtime.api.coalesce import CoalescingHttpToolsProtocol
    from mpo_realtime.logs import configure_logging
    from mpo_realtime.services import Services
    from mpo_realtime.store.simulator import Simulator, World

    configure_logging(logging.INFO)
    settings = _settings(data_dir, host=host, port=port)
    services = Services.open(settings)
    tasks: list[BackgroundTask] = []
    try:
        if demo:
            world = World.generate(seed=7)
            simulator = Simulator(world, seed=7)
            started = time.perf_counter()
            rows = demo_mod.backfill(services, simulator, hours=demo_hours, now=datetime.now(UTC))
            console.print(
                f"back-filled {rows:,} roll-up rows in {time.perf_counter() - started:.1f}s"
            )
            creds = demo_mod.ensure_demo_client(services, world)
            _print_demo_help(settings, creds)

            async def traffic(active: Services) -> None:
                await demo_mod.live_traffic(active, simulator, events_per_second=demo_rate)

            tasks.append(traffic)
        app = create_app(settings, services=services, tasks=tasks)
        # What exists now lives as long as the process: keep it out of the cyclic
        # collector, whose full passes over it stopped every request (137 ms seen with
        # 150k objects under 200 polling clients; 5 ms once frozen).
        gc.collect()
        gc.freeze()
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            log_level="info",
            # JSON lines from configure_logging; the app writes its own access log
            log_config=None,
            access_log=False,
            timeout_keep_alive=5,
            # no "server: uvicorn" on every answer: it tells attackers what runs here
            server_header=False,
            # httptools parses HTTP in C (about 10 % more ingest per CPU second), and
            # each small answer leaves in one write (see api/coalesce.py). The asyncio
            # loop is kept: under uvloop some polls stalled for close to a second at 200
            # connections in bench_poll.py.
            http=CoalescingHttpToolsProtocol,
            loop="asyncio",
        )
    finally:
        services.close()


def _print_demo_help(settings: Settings, creds: dict[str, object]) -> None:
    base = f"http://{settings.host}:{settings.port}"
    advertisers = creds["advertiser_ids"]
    first = advertisers[0] if isinstance(advertisers, list) else "?"
    console.print(f"demo client: {settings.data_dir / 'demo-client.json'}")
    console.print(
        "try:\n"
        f"  TOKEN=$(curl -s {base}/oauth2/token -d grant_type=client_credentials "
        f"-d client_id={creds['client_id']} -d client_secret={creds['client_secret']} "
        "| python3 -c 'import sys,json;print(json.load(sys.stdin)[\"access_token\"])')\n"
        f"  curl -s -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' "
        f"{base}/preview/marketing-solutions/marketplace-performance-outcomes/stats/"
        "realtime-reports/export "
        f'-d \'{{"data":{{"type":"RealTimeProductReportJob","attributes":'
        f'{{"advertiserIds":["{first}"],"dimensions":["campaignId","hour"],'
        f'"lookbackWindow":180}}}}}}\''
    )


@app.command()
@_errors_to_exit
def simulate(
    data_dir: DataDir = None,
    seed: Annotated[int, typer.Option(help="Seed: same seed, same traffic.")] = 7,
    hours: Annotated[float, typer.Option(help="Hours of history to back-fill first.")] = 0.0,
    rate: Annotated[int, typer.Option(help="Live events per second (0: none).")] = 0,
    duration: Annotated[float, typer.Option(help="Seconds of live traffic (0: forever).")] = 0.0,
    target: Annotated[
        str | None, typer.Option(help="Server base URL; default: write the local store.")
    ] = None,
    client_id: Annotated[str | None, typer.Option(envvar="MPO_CLIENT_ID")] = None,
    client_secret: Annotated[str | None, typer.Option(envvar="MPO_CLIENT_SECRET")] = None,
    batch: Annotated[int, typer.Option(help="Events per HTTP request.")] = 1000,
) -> None:
    """Generate realistic marketplace traffic into a local store or a running server."""
    from mpo_realtime.store.simulator import Simulator, World

    simulator = Simulator(World.generate(seed=seed), seed=seed)
    if target is None:
        _simulate_local(_settings(data_dir), simulator, hours=hours, rate=rate, duration=duration)
        return
    if hours:
        err.print("--hours back-fills a local store only; against a server, use --rate")
        raise typer.Exit(2)
    if not client_id or not client_secret:
        err.print("--client-id and --client-secret (of a client with the ingest role) are needed")
        raise typer.Exit(2)
    _simulate_remote(
        target, client_id, client_secret, simulator, rate=rate, duration=duration, batch=batch
    )


def _simulate_local(
    settings: Settings, simulator: Any, *, hours: float, rate: int, duration: float
) -> None:
    from mpo_realtime import demo as demo_mod
    from mpo_realtime.services import Services

    services = Services.open(settings)
    try:
        if hours:
            started = time.perf_counter()
            rows = demo_mod.backfill(services, simulator, hours=hours, now=datetime.now(UTC))
            console.print(
                f"back-filled {rows:,} roll-up rows in {time.perf_counter() - started:.2f}s"
            )
        if rate:

            async def run() -> None:
                task = demo_mod.live_traffic(services, simulator, events_per_second=rate)
                await asyncio.wait_for(task, duration or None)

            try:
                asyncio.run(run())
            except TimeoutError:
                pass
    finally:
        services.close()


def _simulate_remote(
    target: str,
    client_id: str,
    secret: str,
    simulator: Any,
    *,
    rate: int,
    duration: float,
    batch: int,
) -> None:
    with httpx.Client(base_url=target, timeout=30) as http:
        answer = http.post(
            "/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
            },
        )
        answer.raise_for_status()
        headers = {
            "Authorization": f"Bearer {answer.json()['access_token']}",
            "Content-Type": "application/json",
        }
        deadline = time.monotonic() + duration if duration else float("inf")
        sent = 0
        while time.monotonic() < deadline:
            started = time.monotonic()
            events = simulator.events(datetime.now(UTC), batch)
            http.post(
                "/ingest/v1/events", content=orjson.dumps(events), headers=headers
            ).raise_for_status()
            sent += len(events)
            if rate:
                time.sleep(max(0.0, len(events) / rate - (time.monotonic() - started)))
        console.print(f"sent {sent:,} events")


@clients_app.command("create")
@_errors_to_exit
def clients_create(
    name: str,
    advertisers: Annotated[str, typer.Option(help="Comma-separated advertiser IDs in scope.")],
    ingest: Annotated[bool, typer.Option(help="Also grant the ingest role.")] = False,
    report: Annotated[bool, typer.Option(help="Grant the report role.")] = True,
    requests_per_minute: Annotated[int | None, typer.Option(help="Rate limit override.")] = None,
    exports_per_hour: Annotated[int | None, typer.Option(help="Export quota override.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Create a client; prints its client_id and client_secret (shown only once)."""
    try:
        ids = sorted({int(part) for part in advertisers.split(",") if part.strip()})
    except ValueError:
        err.print("--advertisers takes decimal IDs separated by commas")
        raise typer.Exit(2) from None
    roles = [r for r, on in ((Role.REPORT, report), (Role.INGEST, ingest)) if on]
    with _client_service(data_dir) as service:
        client, secret = service.create(
            name,
            advertiser_ids=ids,
            roles=roles,
            now=datetime.now(UTC),
            requests_per_minute=requests_per_minute,
            exports_per_hour=exports_per_hour,
        )
    out = {
        "client_id": client.client_id,
        "client_secret": secret,
        "name": client.name,
        "advertiser_ids": [str(a) for a in client.advertiser_ids],
        "roles": sorted(r.value for r in client.roles),
    }
    if as_json:
        typer.echo(orjson.dumps(out).decode())
    else:
        for key, value in out.items():
            console.print(f"{key}: {value}")


@clients_app.command("list")
@_errors_to_exit
def clients_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    data_dir: DataDir = None,
) -> None:
    """List clients (never their secrets)."""
    with _client_service(data_dir) as service:
        clients = service.list()
    rows = [
        {
            "client_id": c.client_id,
            "name": c.name,
            "advertiser_ids": [str(a) for a in c.advertiser_ids],
            "roles": sorted(r.value for r in c.roles),
            "revoked": c.revoked_at is not None,
        }
        for c in clients
    ]
    if as_json:
        typer.echo(orjson.dumps(rows).decode())
        return
    for c in clients:
        roles = ",".join(sorted(r.value for r in c.roles))
        advertisers = ",".join(str(a) for a in c.advertiser_ids)
        revoked = "  REVOKED" if c.revoked_at is not None else ""
        console.print(f"{c.client_id}  {c.name}  advertisers={advertisers}  roles={roles}{revoked}")


@clients_app.command("revoke")
@_errors_to_exit
def clients_revoke(client_id: str, data_dir: DataDir = None) -> None:
    """Revoke a client: its tokens stop working within seconds."""
    with _client_service(data_dir) as service:
        if not service.revoke(client_id, now=datetime.now(UTC)):
            err.print(f"no active client {client_id}")
            raise typer.Exit(1)
    console.print(f"revoked {client_id}")


@contextlib.contextmanager
def _client_service(data_dir: Path | None) -> Iterator[ClientService]:
    from mpo_realtime.exports.jobstore import SqlJobStore
    from mpo_realtime.services import client_service

    settings = _settings(data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = SqlJobStore(settings.resolved_job_store_url)
    try:
        store.migrate()
        yield client_service(settings, store)
    finally:
        store.close()


report_cli.register(app)  # mpo report, mpo report status|download, mpo login


def main() -> None:
    app()
