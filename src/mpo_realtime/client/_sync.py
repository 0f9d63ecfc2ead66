"""``ReportClient``: the blocking client (performs the flows of ``_base`` with httpx.Client)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self, TypeVar, Unpack

import httpx

from mpo_realtime.client._base import (
    Action,
    BaseReportClient,
    Close,
    Drain,
    Flow,
    ReadBody,
    Send,
    Sleep,
    StatusCallback,
    Token,
)
from mpo_realtime.client._config import PollPolicy, RetryPolicy
from mpo_realtime.client._models import ExportStatus, ReportOptions, report_attributes
from mpo_realtime.client._result import ExportResult

__all__ = ["ReportClient"]

T = TypeVar("T")


class ReportClient(BaseReportClient):
    """A client of the MPO Real-Time Asynchronous API.

    ``export(...)`` creates an export, waits for it and downloads it in one call;
    ``create``, ``status``, ``wait`` and ``download`` do one step each, so that a
    pipeline can keep the export ID and resume after a crash. The access token is
    fetched when first needed and renewed before it expires. Use it as a context manager
    (or call ``close()``) to release its connections.

    ``transport`` is httpx's: tests hand in ``httpx.WSGITransport`` or
    ``httpx.MockTransport``, and anything else httpx accepts works.
    """

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        version: str = "preview",
        timeout: float | httpx.Timeout = 30.0,
        poll: PollPolicy | None = None,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url, client_id, client_secret, version=version, poll=poll, retry=retry
        )
        self._http = httpx.Client(
            base_url=self.credentials.base_url,
            timeout=timeout,
            headers=self._client_headers(headers),
            transport=transport,
        )
        self._build = self._http.build_request
        self._token_lock = threading.Lock()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- the API ----------------------------------------------------------------------

    def export(
        self,
        *,
        path: str | os.PathLike[str] | None = None,
        file: BinaryIO | None = None,
        timeout: float = 600.0,
        on_status: StatusCallback | None = None,
        reuse: bool = True,
        **report: Unpack[ReportOptions],
    ) -> ExportResult:
        """Create an export, wait until it is Done and download it.

        The file is kept in memory (``result.content``); or, with ``path``, streamed to
        a temporary file beside it and renamed into place once complete; or streamed into
        ``file``, an open binary file (standard output, a pipe, an upload stream). ``reuse=False``
        asks for fresh data (``Cache-Control: no-cache``) instead of an identical recent
        export. ``on_status`` is called with every create and poll answer.
        """
        flow = self._export_flow(
            report_attributes(**report),
            path=Path(path) if path is not None else None,
            file=file,
            timeout=timeout,
            on_status=on_status,
            reuse=reuse,
        )
        return self._run(flow)

    def create(self, *, reuse: bool = True, **report: Unpack[ReportOptions]) -> ExportStatus:
        """Create an export job (or get an identical recent one): its ID and status."""
        return self._run(self._create_flow(report_attributes(**report), reuse=reuse))

    def status(self, export_id: str) -> ExportStatus:
        """One poll of an export's status."""
        return self._run(self._status_flow(export_id))

    def wait(
        self, export_id: str, *, timeout: float = 600.0, on_status: StatusCallback | None = None
    ) -> ExportStatus:
        """Poll until Done; raises ``ExportFailed``, ``Expired`` or ``WaitTimeout``."""
        return self._run(self._wait_flow(export_id, timeout=timeout, on_status=on_status))

    def download(
        self,
        export_id: str,
        path: str | os.PathLike[str] | None = None,
        *,
        file: BinaryIO | None = None,
    ) -> ExportResult:
        """Download a Done export (``NotReady`` before): into memory, whole to ``path``,
        or streamed into ``file``. After ``wait``, this resumes a job by its ID."""
        target = Path(path) if path is not None else None
        return self._run(self._download_flow(export_id, target, file=file))

    def authenticate(self) -> None:
        """Fetch an access token now, to fail fast (``AuthenticationError``) on bad
        credentials; other calls fetch one themselves when needed."""
        self._token()

    # -- performing actions -----------------------------------------------------------

    def _token(self) -> str:
        with self._token_lock:
            cached = self._cached_token()
            return cached if cached is not None else self._run(self._token_flow())

    def _run(self, flow: Flow[T]) -> T:
        streams: list[httpx.Response] = []
        result: object = None
        error: BaseException | None = None
        try:
            while True:
                try:
                    action = flow.throw(error) if error is not None else flow.send(result)
                except StopIteration as stop:
                    value: T = stop.value
                    return value
                result, error = None, None
                try:
                    result = self._perform(action, streams)
                except BaseException as exc:  # handed to the flow, which re-raises or cleans up
                    error = exc
        finally:
            flow.close()
            for response in streams:
                response.close()

    def _perform(self, action: Action, streams: list[httpx.Response]) -> object:
        if isinstance(action, Send):
            response = self._http.send(action.request, stream=action.stream)
            if action.stream:
                streams.append(response)
            return response
        if isinstance(action, Sleep):
            time.sleep(action.seconds)
        elif isinstance(action, Token):
            return self._token()
        elif isinstance(action, Drain):
            try:
                for chunk in action.response.iter_bytes():
                    action.sink(chunk)
            finally:
                action.response.close()
        elif isinstance(action, ReadBody):
            action.response.read()
            action.response.close()
        elif isinstance(action, Close):
            action.response.close()
        return None
