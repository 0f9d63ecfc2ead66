"""Service settings: built once, in ``mpo`` commands and ``create_app``, never at import.

Every field can be set through an ``MPO_<NAME>`` environment variable.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from mpo_realtime.defaults import DATA_DIR, HOST, PORT

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Configuration of one mpo-realtime process."""

    model_config = SettingsConfigDict(env_prefix="MPO_", extra="ignore")

    data_dir: Path = Field(DATA_DIR, description="Directory for local state.")
    host: str = Field(HOST, description="Address the HTTP server binds.")
    port: int = Field(PORT, description="Port the HTTP server binds.")
    event_store_url: str | None = Field(
        None, description="Event store, e.g. duckdb:///var/events.duckdb (default in data_dir)."
    )
    job_store_url: str | None = Field(
        None, description="Job and client store, sqlite:///... or postgresql+psycopg://..."
    )
    event_store_memory_limit: str = Field(
        "160MB", description="DuckDB memory limit; larger queries spill to disk beside it."
    )
    malloc_arena_max: int = Field(
        2,
        ge=0,
        description="glibc malloc arenas of an mpo serve or mpo worker process (0: glibc's "
        "default, 8 per core; MALLOC_ARENA_MAX in the environment wins).",
    )
    allow_new_event_store: bool = Field(
        False, description="Start with a new, empty event store although exports exist."
    )
    export_dir: Path | None = Field(None, description="Where export files live (data_dir/exports).")
    signing_key: str | None = Field(
        None, description="Access-token signing key (default: generated into data_dir)."
    )
    api_versions: list[str] = Field(
        ["preview", "2025-10", "2026-01", "2026-04", "2026-07", "2026-10"],
        description="Accepted {version} path segments.",
    )
    token_ttl_seconds: int = Field(900, description="Lifetime of access tokens.")
    export_ttl_seconds: int = Field(86_400, description="Time a Done export stays downloadable.")
    cache_window_seconds: int = Field(
        60, description="Reuse window of relative (lookbackWindow or open-ended) requests."
    )
    settle_seconds: int = Field(
        600, description="Age after which data is settled: absolute reports are reused."
    )
    flush_interval_seconds: float = Field(0.1, description="Ingest micro-batch period (<= 0.25).")
    ingest_max_body_bytes: int = Field(16 * 1024 * 1024, description="Largest ingest body.")
    ingest_max_events: int = Field(100_000, description="Most events in one ingest request.")
    retention_days: int = Field(45, description="Roll-up rows older than this are purged.")
    max_ids_per_filter: int = Field(10_000, description="Most IDs in one report filter.")
    runner_concurrency: int = Field(2, description="Export jobs run at once by this process.")
    exports_text_in_engine: bool = Field(
        False,
        description="Let DuckDB make the CSV/JSON text in its threads, before its sort "
        "(byte-identical files; overlaps formatting with the query on idle cores, but the "
        "sort carries more bytes per row).",
    )
    max_running_per_client: int = Field(
        0,
        ge=0,
        description="Export jobs of one client run at once by this process; 0: "
        "runner_concurrency - 1 (at least 1), so one runner stays free for other clients.",
    )
    lease_seconds: float = Field(60.0, description="Lease of a running job; renewed meanwhile.")
    sweep_interval_seconds: float = Field(
        30.0, description="Period of expiry and retention sweeps."
    )
    poll_retry_after_seconds: int = Field(5, description="Retry-After of a Pending poll.")
    rate_limit_storage_url: str = Field(
        "memory://", description="Rate-limit storage: memory:// or redis://host:port/db."
    )
    rate_limit_namespace: str = Field("mpo", description="Key prefix of rate limits in Redis.")
    report_requests_per_minute: int = Field(
        200, description="Report API calls per client per minute (client override wins)."
    )
    exports_per_hour: int = Field(
        500, description="New exports per client per hour; cache hits are free."
    )
    ingest_requests_per_minute: int = Field(
        6000, description="Ingest requests per client per minute."
    )
    token_requests_per_minute: int = Field(
        20,
        description="Failed token requests per client_id per minute; once spent, only "
        "addresses that authenticated that client recently may try (slows secret guessing).",
    )
    token_requests_per_minute_per_address: int = Field(
        60, description="Token requests per source address per minute."
    )
    token_trusted_address_seconds: int = Field(
        86_400,
        description="How long an address that obtained a token for a client_id stays "
        "exempt from that client_id's failure budget.",
    )
    token_max_body_bytes: int = Field(
        4096, description="Largest token request body (form-encoded fields only)."
    )
    report_max_body_bytes: int = Field(1024 * 1024, description="Largest create-export body.")
    body_read_timeout_seconds: float = Field(
        30.0, description="Time allowed to send a request body (slow clients get 408)."
    )
    max_header_bytes: int = Field(
        32 * 1024,
        description="Largest request head (request line and headers); larger ones get 431.",
    )
    header_read_timeout_seconds: float = Field(
        10.0,
        description="Time allowed to send a request head, from its first byte or from the "
        "connection's opening (slow clients get 408 and are disconnected).",
    )
    keep_alive_timeout_seconds: int = Field(
        5, description="An idle keep-alive connection is closed after this long."
    )
    max_pipelined_requests: int = Field(
        16,
        description="Requests read ahead on one connection while an earlier one is "
        "answered; beyond that the server stops reading from it.",
    )
    access_log: Literal["all", "problems", "off"] = Field(
        "all",
        description="Access lines: every request, only problems (status >= 400 or over 1 s), "
        "or none.",
    )

    log_format: Literal["auto", "json", "text"] = Field(
        "auto",
        description="Log lines as JSON or as short text; auto: text on a terminal, else JSON.",
    )
    status_interval_seconds: float = Field(
        10.0,
        description="Period of the status line of mpo serve (ingest rate, data freshness, "
        "exports); 0 turns it off.",
    )
    shutdown_grace_seconds: float = Field(
        20.0,
        description="On SIGTERM or Ctrl+C: time in-flight requests, then running export jobs, "
        "get to finish; jobs still running are then released to another runner.",
    )

    @property
    def resolved_event_store_url(self) -> str:
        return self.event_store_url or f"duckdb:///{self.data_dir / 'events.duckdb'}"

    @property
    def resolved_job_store_url(self) -> str:
        return self.job_store_url or f"sqlite:///{self.data_dir / 'jobs.sqlite3'}"

    @property
    def demo_client_path(self) -> Path:
        """Where ``mpo serve --demo`` keeps the demo client's credentials."""
        return self.data_dir / "demo-client.json"

    @property
    def resolved_export_dir(self) -> Path:
        return self.export_dir or self.data_dir / "exports"

    def resolved_signing_key(self) -> str:
        """The configured key, else one kept in ``data_dir/signing.key`` (made on first use).

        Every API process must sign with the same key, or a token from one is refused by
        another: processes on one machine share the file (made atomically, so that
        processes starting at once agree on it); processes on several machines need the
        same ``MPO_SIGNING_KEY``.
        """
        if self.signing_key:
            return self.signing_key
        path = self.data_dir / "signing.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # written whole under a temporary name, then linked in: exactly one of the
            # processes racing here creates the file, and nobody reads it half-written
            partial = path.with_name(f".signing.key.{os.getpid()}.{secrets.token_hex(4)}")
            descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as out:
                out.write(secrets.token_urlsafe(32))
            try:
                os.link(partial, path)
            except FileExistsError:
                pass  # another process made it first: use theirs
            finally:
                partial.unlink()
        return path.read_text().strip()
