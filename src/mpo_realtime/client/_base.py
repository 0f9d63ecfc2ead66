"""What the sync and async clients share: their configuration and every decision.

The logic is written once, as *flows*: generators that yield I/O actions (send this
request, sleep, stream this body into that sink) and receive their results. A failure of
an action is thrown back into the flow at the ``yield``, so its ``try`` blocks clean up
(a half-written file is removed) as in ordinary code. ``ReportClient`` performs the
actions by blocking, ``AsyncReportClient`` by awaiting: retries, token refresh, polling
and file writing exist once, here.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Self, TypeVar

import httpx

from mpo_realtime import __version__
from mpo_realtime.client._config import Credentials, PollPolicy, RetryPolicy
from mpo_realtime.client._errors import (
    ClientError,
    Expired,
    ExportFailed,
    Problem,
    TransportError,
    WaitTimeout,
    error_from_response,
    parse_retry_after,
)
from mpo_realtime.client._files import IncompleteFile, Receiver
from mpo_realtime.client._models import ExportStatus, Status
from mpo_realtime.client._result import ExportResult

__all__ = [
    "Action",
    "BaseReportClient",
    "Close",
    "Drain",
    "Flow",
    "ReadBody",
    "Send",
    "Sleep",
    "StatusCallback",
    "Token",
]

log = logging.getLogger("mpo_realtime.client")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``request``; the answer is the ``httpx.Response`` (headers only if ``stream``)."""

    request: httpx.Request
    stream: bool = False


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


@dataclass(frozen=True, slots=True)
class Drain:
    """Feed a streamed body, decoded, chunk by chunk to ``sink``; then close the answer."""

    response: httpx.Response
    sink: Callable[[bytes], None]


@dataclass(frozen=True, slots=True)
class ReadBody:
    """Read a streamed answer's whole body (an error answer), then close it."""

    response: httpx.Response


@dataclass(frozen=True, slots=True)
class Close:
    response: httpx.Response


@dataclass(frozen=True, slots=True)
class Token:
    """A valid access token: the cached one, or a new one fetched under the client's lock."""


Action = Send | Sleep | Drain | ReadBody | Close | Token
Flow = Generator[Action, Any, T]
StatusCallback = Callable[[ExportStatus], None]

#: a token is replaced a tenth of its lifetime plus a second before it expires (at most
#: this long): ``expires_in`` is whole seconds, so a token can end up to a second sooner
TOKEN_MARGIN_SECONDS = 60.0


class BaseReportClient:
    """Configuration and flows; ``ReportClient``/``AsyncReportClient`` perform the I/O."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        version: str = "preview",
        poll: PollPolicy | None = None,
        retry: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.credentials = Credentials(base_url.rstrip("/"), client_id, client_secret)
        self.stats_path = f"/{version}/marketing-solutions/marketplace-performance-outcomes/stats"
        self.poll = poll or PollPolicy()
        self.retry = retry or RetryPolicy()
        self._rng = rng or random.Random()
        self._access_token: str | None = None
        self._token_renew_at = 0.0
        self._build: Callable[..., httpx.Request]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **options: Any) -> Self:
        """Built from ``MPO_URL``, ``MPO_CLIENT_ID`` and ``MPO_CLIENT_SECRET``."""
        creds = Credentials.from_env(environ)
        return cls(creds.base_url, creds.client_id, creds.client_secret, **options)

    @staticmethod
    def _client_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
        return {"User-Agent": f"mpo-realtime-client/{__version__}", **(headers or {})}

    # -- tokens -----------------------------------------------------------------------

    def _cached_token(self) -> str | None:
        if self._access_token is not None and time.monotonic() < self._token_renew_at:
            return self._access_token
        return None

    def _forget_token(self, token: str) -> None:
        if self._access_token == token:
            self._access_token = None

    def _token_flow(self) -> Flow[str]:
        """POST /oauth2/token with the client credentials; the answer is cached."""
        creds = self.credentials
        form = {
            "grant_type": "client_credentials",
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
        }
        response = yield from self._send_flow(
            lambda: self._build("POST", "/oauth2/token", data=form)
        )
        if response.is_error:
            raise error_from_response(response)
        try:
            answer = response.json()
            token, lifetime = str(answer["access_token"]), float(answer["expires_in"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ClientError(f"unexpected token answer: {response.text[:200]!r}") from exc
        margin = min(TOKEN_MARGIN_SECONDS, lifetime / 10 + 1.0)
        self._access_token = token
        self._token_renew_at = time.monotonic() + lifetime - margin
        return token

    # -- requests ---------------------------------------------------------------------

    def _send_flow(
        self, build: Callable[[], httpx.Request], *, stream: bool = False
    ) -> Flow[httpx.Response]:
        """Send with retries on connection errors, 429 and 5xx, as ``self.retry`` says.

        The last answer is returned as it is (an error answer included) once the policy
        gives up; a connection error then becomes ``TransportError``.
        """
        attempt = 0
        while True:
            attempt += 1
            request = build()
            try:
                response: httpx.Response = yield Send(request, stream)
            except httpx.TransportError as exc:
                delay = self.retry.delay(attempt, None, self._rng)
                if delay is None:
                    raise TransportError(f"{request.method} {request.url}: {exc!r}") from exc
                log.warning(
                    "%s %s failed (%r); retry %d in %.2f s",
                    request.method,
                    request.url.path,
                    exc,
                    attempt,
                    delay,
                )
                yield Sleep(delay)
                continue
            if response.status_code in self.retry.statuses:
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                delay = self.retry.delay(attempt, retry_after, self._rng)
                if delay is not None:
                    log.warning(
                        "%s %s answered %d (retry-after %s, trace id %s); retry %d in %.2f s",
                        request.method,
                        request.url.path,
                        response.status_code,
                        response.headers.get("retry-after"),
                        response.headers.get("x-trace-id"),
                        attempt,
                        delay,
                        extra={"retry_after": retry_after, "delay": delay},
                    )
                    if stream:
                        yield Close(response)
                    yield Sleep(delay)
                    continue
            return response

    def _call_flow(
        self,
        method: str,
        path: str,
        *,
        stream: bool = False,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> Flow[httpx.Response]:
        """An authorised API call; an error answer is raised as its typed error.

        A 401 with a token that the client believed valid (the server restarted with
        another key, say) gets one new token and one more try.
        """
        url = self.stats_path + path
        token: str = yield Token()
        for renewed in (False, True):
            bearer = {"Authorization": f"Bearer {token}", **(headers or {})}
            build = functools.partial(self._build, method, url, headers=bearer, content=content)
            response = yield from self._send_flow(build, stream=stream)
            if response.status_code == 401 and not renewed:
                if stream:
                    yield Close(response)
                self._forget_token(token)
                token = yield Token()
                continue
            if response.is_error:
                if stream:
                    yield ReadBody(response)
                raise error_from_response(response)
            return response
        raise AssertionError("unreachable")

    # -- the API ----------------------------------------------------------------------

    def _create_flow(self, attributes: Mapping[str, object], *, reuse: bool) -> Flow[ExportStatus]:
        body = {"data": {"type": "RealTimeProductReportJob", "attributes": dict(attributes)}}
        headers = {"Content-Type": "application/json"}
        if not reuse:
            headers["Cache-Control"] = "no-cache"
        response = yield from self._call_flow(
            "POST", "/realtime-reports/export", headers=headers, content=json.dumps(body).encode()
        )
        return ExportStatus.from_response(response)

    def _status_flow(self, export_id: str) -> Flow[ExportStatus]:
        response = yield from self._call_flow("GET", f"/report-jobs/{export_id}")
        return ExportStatus.from_response(response)

    def _wait_flow(
        self,
        export_id: str,
        *,
        timeout: float,
        on_status: StatusCallback | None,
        current: ExportStatus | None = None,
    ) -> Flow[ExportStatus]:
        """Poll until Done (returned), Failure or Expired (raised) or the timeout."""
        started = time.monotonic()
        delays = self.poll.delays()
        status = current
        while True:
            if status is not None:
                if on_status is not None:
                    on_status(status)
                if status.status is Status.DONE:
                    return status
                if status.status in (Status.FAILURE, Status.EXPIRED):
                    raise _status_error(status)
                delay = max(next(delays), status.retry_after or 0.0)
                if time.monotonic() + delay > started + timeout:
                    raise WaitTimeout(export_id, time.monotonic() - started)
                yield Sleep(delay)
            status = yield from self._status_flow(export_id)

    def _download_flow(
        self,
        export_id: str,
        path: Path | None,
        *,
        file: BinaryIO | None = None,
        timezone: str | None = None,
    ) -> Flow[ExportResult]:
        """Stream the file into memory, into ``path`` (whole, or not at all) or ``file``.

        A body cut short (connection lost, or a file that does not end as a whole CSV or
        JSON file does) is fetched again from the start, as the retry policy allows,
        unless part of it already went into ``file``, which cannot be taken back.
        """
        attempt = 0
        while True:
            attempt += 1
            response = yield from self._call_flow(
                "GET", f"/realtime-reports/{export_id}", stream=True
            )
            receiver = Receiver(response.headers.get("content-type", ""), path, file)
            try:
                yield Drain(response, receiver)
                rows = receiver.finish()
            except (httpx.TransportError, IncompleteFile) as exc:
                failure: Exception = exc
            else:
                return ExportResult(
                    export_id=export_id,
                    file_format=receiver.counter.format,
                    content_type=receiver.content_type,
                    row_count=rows,
                    size=receiver.size,
                    path=path,
                    encoding=response.headers.get("content-encoding"),
                    timezone=timezone,
                    trace_id=response.headers.get("x-trace-id"),
                    _content=bytes(receiver.buffer) if path is None and file is None else None,
                )
            finally:
                receiver.discard()
            delay = self.retry.delay(attempt, None, self._rng)
            if delay is None or (file is not None and receiver.size):
                raise TransportError(f"download of {export_id} cut short: {failure}") from failure
            log.warning("download of %s cut short (%s); again in %.2f s", export_id, failure, delay)
            yield Sleep(delay)

    def _export_flow(
        self,
        attributes: Mapping[str, object],
        *,
        path: Path | None,
        file: BinaryIO | None,
        timeout: float,
        on_status: StatusCallback | None,
        reuse: bool,
    ) -> Flow[ExportResult]:
        created = yield from self._create_flow(attributes, reuse=reuse)
        yield from self._wait_flow(
            created.export_id, timeout=timeout, on_status=on_status, current=created
        )
        zone = attributes.get("timezone")
        return (
            yield from self._download_flow(
                created.export_id,
                path,
                file=file,
                timezone=zone if isinstance(zone, str) else None,
            )
        )


def _status_error(status: ExportStatus) -> ClientError:
    kind = ExportFailed if status.status is Status.FAILURE else Expired
    detail = status.message or f"the export is {status.status.value}"
    return kind(
        status_code=200,
        errors=(Problem(None, f"export {status.export_id}: {detail}", trace_id=status.trace_id),),
        trace_id=status.trace_id,
    )
