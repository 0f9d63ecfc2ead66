"""``mpo clients create|list|revoke``: API clients in the configured job store."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mpo_realtime.cli.common import DATA_DIR, DataDir, errors_to_exit, fail, make_settings

if TYPE_CHECKING:
    from mpo_realtime.exports.clients import ClientService

__all__ = ["clients_app"]

clients_app = typer.Typer(
    help="Manage API clients (credentials, scope, roles).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@clients_app.command("create")
@errors_to_exit
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
    import orjson

    from mpo_realtime.domain.jobs import Role

    if any_advertiser and not ingest:
        fail("--any-advertiser widens ingest only: give --ingest too")
    if advertisers is None and not any_advertiser:
        fail("--advertisers is needed: the advertiser IDs this client may use")
    try:
        ids = sorted({int(part) for part in (advertisers or "").split(",") if part.strip()})
    except ValueError:
        fail("--advertisers takes decimal IDs separated by commas")
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
            typer.echo(f"{key}: {value}")


@clients_app.command("list")
@errors_to_exit
def clients_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    data_dir: DataDir = DATA_DIR,
) -> None:
    """List clients (never their secrets)."""
    import orjson

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
        typer.echo(
            f"{c.client_id}  {c.name}  advertisers={advertisers}  roles={roles}{trusted}{revoked}"
        )


@clients_app.command("revoke")
@errors_to_exit
def clients_revoke(
    client_id: Annotated[str, typer.Argument(metavar="CLIENT_ID", help="The client to revoke.")],
    data_dir: DataDir = DATA_DIR,
) -> None:
    """Revoke a client: its tokens stop working within seconds."""
    with _client_service(data_dir) as service:
        if not service.revoke(client_id, now=datetime.now(UTC)):
            fail(f"no active client {client_id}", code=1)
    typer.echo(f"revoked {client_id}")


@contextlib.contextmanager
def _client_service(data_dir: Path | None) -> Iterator[ClientService]:
    from mpo_realtime.exports.jobstore import SqlJobStore
    from mpo_realtime.services import client_service

    settings = make_settings(data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = SqlJobStore(settings.resolved_job_store_url)
    try:
        store.migrate()
        yield client_service(settings, store)
    finally:
        store.close()
