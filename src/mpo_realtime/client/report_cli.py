"""``mpo report`` and ``mpo login``: exports from the command line, through the client.

Human output (status line, table, summary) goes to a terminal only; the file goes to
``-o FILE`` (whole or not at all), or raw to standard output when that is not a terminal.
Errors print the API's problems and trace ID on stderr and exit with a code of
``Exit`` (documented in docs/clients.md); never a traceback.
"""

from __future__ import annotations

import enum
import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import click
import orjson
import typer

from mpo_realtime.client._config import (
    RetryPolicy,
    default_config_path,
    read_config,
    write_config,
)
from mpo_realtime.client._errors import (
    ApiError,
    AuthenticationError,
    ClientError,
    Expired,
    ExportFailed,
    NotFound,
    NotReady,
    PermissionDenied,
    RateLimited,
    ServerError,
    TransportError,
    ValidationError,
    WaitTimeout,
)
from mpo_realtime.client._models import ReportOptions, Status
from mpo_realtime.client._output import StatusLine, deliver
from mpo_realtime.client._result import ExportResult
from mpo_realtime.client._sync import ReportClient

__all__ = ["Exit", "register", "report_app"]

DEFAULT_URL = "http://127.0.0.1:8080"


class Exit(enum.IntEnum):
    """Exit codes of ``mpo report`` and ``mpo login``, for scripts."""

    OK = 0
    ERROR = 1  # anything else: a local file could not be written, an unexpected answer
    USAGE = 2  # bad options, or no credentials anywhere
    INVALID = 3  # the API refused the request as invalid (400, 409): fix it
    AUTHENTICATION = 4  # credentials or token refused (401)
    PERMISSION = 5  # an advertiser outside the client's scope, or a missing role (403)
    NOT_FOUND = 6  # no such export for this client
    EXPIRED = 7  # the export's file was deleted
    FAILED = 8  # the export job failed on the server
    RATE_LIMITED = 9  # still rate limited after the client's retries (429)
    UNAVAILABLE = 10  # server error (5xx) or no connection, after retries
    PENDING = 11  # the export is not Done yet (timeout, or `status` of a Pending job)
    INTERRUPTED = 130  # Ctrl+C


#: most specific first
_EXIT_BY_ERROR: tuple[tuple[type[Exception], Exit], ...] = (
    (ValidationError, Exit.INVALID),
    (AuthenticationError, Exit.AUTHENTICATION),
    (PermissionDenied, Exit.PERMISSION),
    (NotFound, Exit.NOT_FOUND),
    (Expired, Exit.EXPIRED),
    (ExportFailed, Exit.FAILED),
    (RateLimited, Exit.RATE_LIMITED),
    (ServerError, Exit.UNAVAILABLE),
    (TransportError, Exit.UNAVAILABLE),
    (NotReady, Exit.PENDING),
    (WaitTimeout, Exit.PENDING),
)
_EXIT_BY_STATUS = {
    Status.DONE: Exit.OK,
    Status.PENDING: Exit.PENDING,
    Status.FAILURE: Exit.FAILED,
    Status.EXPIRED: Exit.EXPIRED,
}

report_app = typer.Typer(
    help="Get a report: create an export, wait for it, download it (or resume one by ID).",
    invoke_without_command=True,
)

F = TypeVar("F", bound=Callable[..., Any])


class UsageError(Exception):
    """The command line cannot work as given."""


def _fail(exit_code: Exit, *lines: str) -> typer.Exit:
    for line in lines:
        typer.echo(line, err=True)
    return typer.Exit(int(exit_code))


def _handled(fn: F) -> F:
    """Errors become a message on stderr and an ``Exit`` code, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except ApiError as exc:
            lines = [f"error: {problem}" for problem in exc.errors]
            where = f"HTTP {exc.status_code}" if exc.status_code != 200 else "export status"
            retry = f", retry after {exc.retry_after:.0f} s" if exc.retry_after else ""
            trace = f", trace id {exc.trace_id}" if exc.trace_id else ""
            raise _fail(_exit_of(exc), *lines, f"({where}{trace}{retry})") from None
        except ClientError as exc:
            raise _fail(_exit_of(exc), f"error: {exc}") from None
        except UsageError as exc:
            raise _fail(Exit.USAGE, f"error: {exc}") from None
        except BrokenPipeError:
            # the reader of our standard output went away (``| head``): stop quietly
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(141) from None
        except OSError as exc:
            raise _fail(Exit.ERROR, f"error: {exc}") from None
        except KeyboardInterrupt:
            raise _fail(Exit.INTERRUPTED, "interrupted") from None
        except Exception as exc:  # the promise is: never a traceback
            raise _fail(Exit.ERROR, f"error: unexpected {type(exc).__name__}: {exc}") from None

    return wrapper  # type: ignore[return-value]


def _exit_of(exc: Exception) -> Exit:
    return next((code for kind, code in _EXIT_BY_ERROR if isinstance(exc, kind)), Exit.ERROR)


# -- connection options, shared by every command -------------------------------------

Url = Annotated[
    str | None,
    typer.Option(
        "--url", envvar="MPO_URL", help=f"Service URL (else the config file's, else {DEFAULT_URL})."
    ),
]
ClientId = Annotated[
    str | None,
    typer.Option(
        "--client-id", envvar="MPO_CLIENT_ID", help="API client ID (else the config file's)."
    ),
]
ClientSecret = Annotated[
    str | None,
    typer.Option(
        "--client-secret",
        envvar="MPO_CLIENT_SECRET",
        help="API client secret (else the config file's).",
    ),
]
ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config",
        envvar="MPO_CONFIG",
        help="Config file written by `mpo login` (default: ~/.config/mpo/config.toml).",
    ),
]
Output = Annotated[
    str | None,
    typer.Option(
        "--output", "-o", help="Write the file here (complete or not at all); '-': stdout."
    ),
]
Timeout = Annotated[float, typer.Option(help="Seconds to wait for the export.")]
TableRows = Annotated[int, typer.Option("--rows", help="Rows shown in the terminal table.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No status line or summary.")]
Retries = Annotated[
    int, typer.Option(min=0, help="Retries of a request met by 429, 5xx or a lost connection.")
]


@dataclass(frozen=True, slots=True)
class Connection:
    url: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    config: Path | None = None
    retries: int = RetryPolicy().attempts - 1

    def merged(self, other: Connection | None) -> Connection:
        """These values, else ``other``'s (the group's options, given before a command)."""
        if other is None:
            return self
        return Connection(
            self.url or other.url,
            self.client_id or other.client_id,
            self.client_secret or other.client_secret,
            self.config or other.config,
            self.retries,
        )

    def client(self) -> ReportClient:
        """Options and environment first, then the config file."""
        saved = read_config(self.config or default_config_path())
        client_id = self.client_id or saved.get("client_id")
        secret = self.client_secret or saved.get("client_secret")
        if not client_id or not secret:
            raise UsageError(
                "no credentials: pass --client-id and --client-secret, set MPO_CLIENT_ID "
                "and MPO_CLIENT_SECRET, or run `mpo login`"
            )
        url = self.url or saved.get("url") or DEFAULT_URL
        return ReportClient(url, client_id, secret, retry=RetryPolicy(attempts=self.retries + 1))


def _parent_connection(ctx: typer.Context) -> Connection | None:
    return ctx.obj if isinstance(ctx.obj, Connection) else None


def _split(values: list[str] | None) -> list[str] | None:
    """Repeated options whose values may also be comma-separated lists."""
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


# -- commands -------------------------------------------------------------------------


@report_app.callback(invoke_without_command=True)
@_handled
def report(
    ctx: typer.Context,
    advertiser: Annotated[
        list[str] | None,
        typer.Option("--advertiser", "-a", help="Advertiser ID (repeat for several)."),
    ] = None,
    advertisers: Annotated[
        str | None, typer.Option(help="Advertiser IDs, comma-separated.")
    ] = None,
    dimensions: Annotated[
        str | None,
        typer.Option(help="Comma-separated, e.g. campaignId,hour (default: advertiserId)."),
    ] = None,
    metrics: Annotated[
        str | None, typer.Option(help="Comma-separated (default: clicks,displays,cost).")
    ] = None,
    lookback: Annotated[
        int | None,
        typer.Option(help="Minutes back from now, 60-1440 (default: 60 without --start)."),
    ] = None,
    start: Annotated[str | None, typer.Option(help="ISO-8601 start (UTC if no offset).")] = None,
    end: Annotated[str | None, typer.Option(help="ISO-8601 end (default: now).")] = None,
    tz: Annotated[str | None, typer.Option("--tz", help="IANA time zone (default: UTC).")] = None,
    file_format: Annotated[str, typer.Option("--format", "-f", help="csv or json.")] = "csv",
    campaign: Annotated[list[str] | None, typer.Option(help="Campaign ID filter.")] = None,
    seller: Annotated[list[str] | None, typer.Option(help="Seller ID filter.")] = None,
    partner: Annotated[list[str] | None, typer.Option(help="Partner ID filter.")] = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Fresh data, not an identical recent export.")
    ] = False,
    output: Output = None,
    timeout: Timeout = 600.0,
    rows: TableRows = 20,
    quiet: Quiet = False,
    retries: Retries = 4,
    url: Url = None,
    client_id: ClientId = None,
    client_secret: ClientSecret = None,
    config: ConfigFile = None,
) -> None:
    """Create an export, wait for it and download it; or `status`/`download` one by ID."""
    connection = ctx.obj = Connection(url, client_id, client_secret, config, retries)
    if ctx.invoked_subcommand is not None:
        return
    ids = _split(advertiser) or []
    ids += _split([advertisers] if advertisers else None) or []
    if not ids:
        raise UsageError(
            "give the advertisers: --advertiser ID (repeatable) or --advertisers A,B "
            "(see mpo report --help)"
        )
    request: ReportOptions = {
        "advertiser_ids": ids,
        "dimensions": _split([dimensions] if dimensions else None),
        "metrics": _split([metrics] if metrics else None),
        "lookback_window": lookback,
        "start": start,
        "end": end,
        "timezone": tz,
        "file_format": file_format,
        "campaign_ids": _split(campaign),
        "seller_ids": _split(seller),
        "partner_ids": _split(partner),
    }
    with connection.client() as client, StatusLine(sys.stderr.isatty() and not quiet) as line:

        def fetch(**where: Any) -> ExportResult:
            return client.export(
                **where, **request, timeout=timeout, on_status=line.on_status, reuse=not fresh
            )

        deliver(fetch, line, output=output, rows=rows, quiet=quiet)


@report_app.command("status")
@_handled
def status(
    ctx: typer.Context,
    export_id: Annotated[str, typer.Argument(help="The export ID.")],
    wait: Annotated[bool, typer.Option(help="Wait until it is no longer Pending.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    timeout: Timeout = 600.0,
    retries: Retries = 4,
    url: Url = None,
    client_id: ClientId = None,
    client_secret: ClientSecret = None,
    config: ConfigFile = None,
) -> None:
    """Print an export's status; the exit code says it (0 Done, 11 Pending, 8, 7)."""
    connection = Connection(url, client_id, client_secret, config, retries)
    connection = connection.merged(_parent_connection(ctx))
    with connection.client() as client:
        answer = client.wait(export_id, timeout=timeout) if wait else client.status(export_id)
    if as_json:
        body = {"exportId": answer.export_id, "status": answer.status, "message": answer.message}
        typer.echo(orjson.dumps(body).decode())
    else:
        typer.echo(f"{answer.export_id}  {answer.status.value}  {answer.message or ''}".rstrip())
    raise typer.Exit(int(_EXIT_BY_STATUS[answer.status]))


@report_app.command("download")
@_handled
def download(
    ctx: typer.Context,
    export_id: Annotated[str, typer.Argument(help="The export ID.")],
    output: Output = None,
    timeout: Timeout = 600.0,
    rows: TableRows = 20,
    quiet: Quiet = False,
    retries: Retries = 4,
    url: Url = None,
    client_id: ClientId = None,
    client_secret: ClientSecret = None,
    config: ConfigFile = None,
) -> None:
    """Wait for an export by its ID, then download it (resume after a crash)."""
    connection = Connection(url, client_id, client_secret, config, retries)
    connection = connection.merged(_parent_connection(ctx))
    with connection.client() as client, StatusLine(sys.stderr.isatty() and not quiet) as line:
        client.wait(export_id, timeout=timeout, on_status=line.on_status)

        def fetch(**where: Any) -> ExportResult:
            result: ExportResult = client.download(export_id, **where)
            return result

        deliver(fetch, line, output=output, rows=rows, quiet=quiet)


@_handled
def login(
    url: Url = None,
    client_id: ClientId = None,
    client_secret: ClientSecret = None,
    config: ConfigFile = None,
    check: Annotated[
        bool, typer.Option(help="Check the credentials with the service before saving.")
    ] = True,
) -> None:
    """Save the service URL and client credentials for `mpo report` (file mode 0600)."""
    path = config or default_config_path()
    saved = read_config(path)
    interactive = sys.stdin.isatty()
    if not interactive and not (client_id and client_secret):
        raise UsageError("not a terminal: pass --client-id and --client-secret (or MPO_*)")
    url = url or (typer.prompt("Service URL", default=saved.get("url", DEFAULT_URL)))
    client_id = client_id or typer.prompt("Client ID", default=saved.get("client_id"))
    client_secret = client_secret or typer.prompt("Client secret", hide_input=True)
    if check:
        with ReportClient(url, client_id, client_secret) as client:
            client.authenticate()
    write_config(path, {"url": url, "client_id": client_id, "client_secret": client_secret})
    typer.echo(f"saved to {path} (readable by you only)", err=True)


def register(app: typer.Typer) -> None:
    """Add ``mpo report`` (with ``status`` and ``download``) and ``mpo login`` to ``app``."""
    app.add_typer(report_app, name="report")
    app.command("login")(login)
