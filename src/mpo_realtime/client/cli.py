"""The ``mpo`` command line: thin wrappers over the services; errors map to exit codes here."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import shlex
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import httpx
import orjson
import typer
from rich.console import Console

from mpo_realtime import __version__
from mpo_realtime.client import migrate_cli, report_cli
from mpo_realtime.domain.errors import MpoError
from mpo_realtime.domain.jobs import Role
from mpo_realtime.settings import Settings

if TYPE_CHECKING:
    from mpo_realtime.exports.clients import ClientService

__all__ = ["app", "main"]

app = typer.Typer(
    help="mpo-realtime: real-time marketplace ad reporting.",
    no_args_is_help=True,
    # click's plain help: flags show as flags, not as options taking a <bool>
    rich_markup_mode=None,
)
clients_app = typer.Typer(
    help="Manage API clients (credentials, scope, roles).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(clients_app, name="clients")
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _default(name: str) -> Any:
    """A setting's default, so that ``--help`` shows the value the service would use."""
    return Settings.model_fields[name].default


DataDir = Annotated[
    Path,
    typer.Option("--data-dir", envvar="MPO_DATA_DIR", help="Directory for local state."),
]
DATA_DIR: Path = _default("data_dir")
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
            err.print(f"error: {exc}", markup=False, highlight=False)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"mpo-realtime {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """mpo-realtime: real-time marketplace ad reporting."""


@app.command()
@_errors_to_exit
def serve(
    data_dir: DataDir = DATA_DIR,
    host: Annotated[str, typer.Option(envvar="MPO_HOST", help="Bind address.")] = _default("host"),
    port: Annotated[int, typer.Option(envvar="MPO_PORT", help="Bind port.")] = _default("port"),
    demo: Annotated[
        bool,
        typer.Option("--demo", help="Back-fill simulated history, run live traffic, demo client."),
    ] = False,
    demo_hours: Annotated[float, typer.Option(help="Hours of history for --demo.")] = 3.0,
    demo_rate: Annotated[int, typer.Option(help="Live events per second for --demo.")] = 200,
) -> None:
    """Run the whole system (HTTP API, ingestion, export runners, sweeper).

    SIGTERM or Ctrl+C stops it gracefully: in-flight requests and export jobs finish,
    the stores close, and the process exits 0.
    """
    from mpo_realtime.serving import run

    settings = _settings(data_dir, host=host, port=port)
    run(settings, demo=demo, demo_hours=demo_hours, demo_rate=demo_rate, say=_say)


def _say(text: str) -> None:
    """A line for the person at the terminal, on standard output, at once."""
    print(text, flush=True)


@app.command("demo-env")
@_errors_to_exit
def demo_env(data_dir: DataDir = DATA_DIR) -> None:
    """Print the demo client's credentials as shell export lines: eval "$(mpo demo-env)".

    Sets MPO_CLIENT_ID and MPO_CLIENT_SECRET (which mpo simulate --target reads) and
    MPO_ADVERTISER_IDS, from the demo-client.json that mpo serve --demo writes.
    """
    path = _settings(data_dir).demo_client_path
    if not path.is_file():
        err.print(
            f"no demo client in {data_dir}: start the demo first (make run, or mpo serve --demo)",
            markup=False,
        )
        raise typer.Exit(1)
    saved = orjson.loads(path.read_bytes())
    values = {
        "MPO_CLIENT_ID": str(saved["client_id"]),
        "MPO_CLIENT_SECRET": str(saved["client_secret"]),
        "MPO_ADVERTISER_IDS": ",".join(str(a) for a in saved["advertiser_ids"]),
    }
    for name, value in values.items():
        typer.echo(f"export {name}={shlex.quote(value)}")


@app.command()
@_errors_to_exit
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
        _simulate_local(_settings(data_dir), simulator, hours=hours, rate=rate, total=total)
        return
    if hours:
        err.print("--hours back-fills a local store only; against a server, use --rate")
        raise typer.Exit(2)
    if not client_id or not client_secret:
        err.print("--client-id and --client-secret (of a client with the ingest role) are needed")
        raise typer.Exit(2)
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
    _say(f"sent {sent:,} events")


def _simulate_local(
    settings: Settings, simulator: Any, *, hours: float, rate: int, total: int | None
) -> None:
    from mpo_realtime import demo as demo_mod
    from mpo_realtime.services import Services

    services = Services.open(settings)
    try:
        if hours:
            now = datetime.now(UTC)
            _say(demo_mod.backfill(services, simulator, hours=hours, now=now).describe(now))
        if rate:
            task = demo_mod.live_traffic(services, simulator, events_per_second=rate, total=total)
            with contextlib.suppress(KeyboardInterrupt):
                _say(f"stored {asyncio.run(task):,} events")
    finally:
        services.close()


@clients_app.command("create")
@_errors_to_exit
def clients_create(
    name: Annotated[str, typer.Argument(metavar="NAME", help="A name for people, e.g. acme.")],
    advertisers: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated advertiser IDs in scope (reports and ingest), e.g. 321,322."
        ),
    ] = None,
    ingest: Annotated[bool, typer.Option("--ingest", help="Also grant the ingest role.")] = False,
    any_advertiser: Annotated[
        bool,
        typer.Option(
            "--any-advertiser",
            help="Trusted producer: with --ingest, may ingest events of every advertiser "
            "(reports stay within --advertisers). Off by default: ingest is scoped.",
        ),
    ] = False,
    report: Annotated[
        bool, typer.Option("--report/--no-report", help="Grant the report role.")
    ] = True,
    requests_per_minute: Annotated[
        int | None,
        typer.Option(
            help="Report API calls per minute for this client "
            "(default: MPO_REPORT_REQUESTS_PER_MINUTE)."
        ),
    ] = None,
    exports_per_hour: Annotated[
        int | None,
        typer.Option(help="New exports per hour for this client (default: MPO_EXPORTS_PER_HOUR)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    data_dir: DataDir = DATA_DIR,
) -> None:
    """Create a client; prints its client_id and client_secret (shown only once)."""
    if any_advertiser and not ingest:
        err.print("--any-advertiser widens ingest only: give --ingest too")
        raise typer.Exit(2)
    if advertisers is None and not any_advertiser:
        err.print("--advertisers is needed: the advertiser IDs this client may use")
        raise typer.Exit(2)
    try:
        ids = sorted({int(part) for part in (advertisers or "").split(",") if part.strip()})
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
            ingest_any_advertiser=any_advertiser,
        )
    out = {
        "client_id": client.client_id,
        "client_secret": secret,
        "name": client.name,
        "advertiser_ids": [str(a) for a in client.advertiser_ids],
        "roles": sorted(r.value for r in client.roles),
        "ingest_any_advertiser": client.ingest_any_advertiser,
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
    data_dir: DataDir = DATA_DIR,
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
            "ingest_any_advertiser": c.ingest_any_advertiser,
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
        trusted = "  ingest=any-advertiser" if c.ingest_any_advertiser else ""
        console.print(
            f"{c.client_id}  {c.name}  advertisers={advertisers}  roles={roles}{trusted}{revoked}"
        )


@clients_app.command("revoke")
@_errors_to_exit
def clients_revoke(
    client_id: Annotated[str, typer.Argument(metavar="CLIENT_ID", help="The client to revoke.")],
    data_dir: DataDir = DATA_DIR,
) -> None:
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
migrate_cli.register(app)  # mpo migrate-events


def main() -> None:
    app()
