"""``mpo doctor``: check every configured backend and say what is wrong and how to fix it.

Each check looks at one part as this process would use it: the job store, the event
store, rate limits, the export directory and the signing key. For servers it checks
that they answer, their version, that the schema is current, that this account may do
what the service does, and how far the server's clock is from this machine's (leases,
token lifetimes and the cache windows compare times written by different machines).

Nothing is changed: no migration runs, nothing is written but a probe file in the
export directory and a probe key in Redis, both removed at once.
"""

from __future__ import annotations

import enum
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from mpo_realtime.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from mpo_realtime.exports.jobstore import SqlJobStore

__all__ = ["MAX_CLOCK_SKEW_SECONDS", "Finding", "Level", "diagnose"]

#: Clock difference to a server beyond which leases and windows misbehave noticeably.
MAX_CLOCK_SKEW_SECONDS = 2.0
#: Free space under which the export directory is reported (a large export is GBs).
MIN_FREE_BYTES = 1 << 30


class Level(enum.StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of the report: which part, how it is, and what to do about it."""

    part: str
    level: Level
    summary: str
    fix: str | None = None


Check = Callable[[Settings], list[Finding]]


def diagnose(settings: Settings) -> list[Finding]:
    """Every check, in order; a check that crashes is itself a failure, never a traceback."""
    findings: list[Finding] = []
    checks: list[tuple[str, Check]] = [
        ("job store", _job_store),
        ("event store", _event_store),
        ("rate limits", _rate_limits),
        ("export files", _export_dir),
        ("signing key", _signing_key),
    ]
    for part, check in checks:
        try:
            findings += check(settings)
        except Exception as exc:  # a doctor reports, whatever it meets
            findings.append(Finding(part, Level.FAIL, f"the check itself failed: {exc!r}"))
    return findings


def _skew(part: str, server_now: Callable[[], datetime]) -> Finding:
    """Server clock minus this machine's, measured at the middle of the round trip."""
    before = time.time()
    theirs = server_now().timestamp()
    after = time.time()
    skew = theirs - (before + after) / 2
    text = f"clock {skew:+.3f} s from this machine's"
    if abs(skew) <= MAX_CLOCK_SKEW_SECONDS:
        return Finding(part, Level.OK, text)
    return Finding(
        part,
        Level.FAIL,
        f"{text} (more than {MAX_CLOCK_SKEW_SECONDS:g} s)",
        "synchronise the clocks of every machine (chrony or systemd-timesyncd with NTP)",
    )


# ------------------------------------------------------------------------- job store


def _job_store(settings: Settings) -> list[Finding]:
    from sqlalchemy import inspect, text
    from sqlalchemy.exc import SQLAlchemyError

    from mpo_realtime.exports.jobstore import SqlJobStore
    from mpo_realtime.exports.jobtables import METADATA

    part = "job store"
    url = settings.resolved_job_store_url
    if url.startswith("sqlite:///"):
        missing = _missing_sqlite_file(part, Path(url.removeprefix("sqlite:///")))
        if missing is not None:
            return [missing]
    store = SqlJobStore(url)
    shown = store.engine.url.render_as_string(hide_password=True)
    try:
        try:
            with store.engine.connect() as connection:
                postgres = connection.dialect.name == "postgresql"
                version = connection.scalar(
                    text("SHOW server_version" if postgres else "SELECT sqlite_version()")
                )
        except SQLAlchemyError as exc:
            cause = getattr(exc, "orig", None) or exc
            reason = (str(cause).strip().splitlines() or [repr(cause)])[0]
            return [
                Finding(
                    part,
                    Level.FAIL,
                    f"cannot reach {shown}: {reason}",
                    "check MPO_JOB_STORE_URL, that the server runs and accepts this machine "
                    "and user (pg_hba.conf), or that the SQLite file's directory exists",
                )
            ]
        engine = "PostgreSQL" if postgres else "SQLite"
        findings = [Finding(part, Level.OK, f"{engine} {version} at {shown}")]
        findings.append(_migrations(part, store))
        with store.engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
            ours = sorted(t for t in METADATA.tables if t in tables)
            if postgres:
                findings.append(_postgres_permissions(part, connection, ours))
                findings.append(
                    _skew(part, lambda: connection.scalar(text("SELECT clock_timestamp()")))
                )
            else:
                findings.append(_sqlite_permissions(part, store.engine.url.database))
        return findings
    finally:
        store.close()


def _migrations(part: str, store: SqlJobStore) -> Finding:
    import alembic.config
    import alembic.script
    from sqlalchemy import inspect, text

    fix_migrate = (
        "start any mpo process on this store once: mpo serve, mpo worker and "
        "mpo clients list bring its schema up to date"
    )
    config = alembic.config.Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "exports/migrations"))
    script = alembic.script.ScriptDirectory.from_config(config)
    heads = set(script.get_heads())
    with store.engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return Finding(
                part, Level.FAIL, "no schema: the database was never migrated", fix_migrate
            )
        current = set(connection.scalars(text("SELECT version_num FROM alembic_version")))
    if current == heads:
        return Finding(part, Level.OK, f"schema current (revision {', '.join(sorted(heads))})")
    known = {revision.revision for revision in script.walk_revisions()}
    if current - known:
        return Finding(
            part,
            Level.FAIL,
            f"schema at revision {', '.join(sorted(current))}, newer than this mpo-realtime "
            f"knows (its newest: {', '.join(sorted(heads))})",
            "upgrade mpo-realtime here to the version the other processes run",
        )
    return Finding(
        part,
        Level.FAIL,
        f"schema at revision {', '.join(sorted(current))}, behind {', '.join(sorted(heads))}",
        fix_migrate,
    )


def _postgres_permissions(part: str, connection: Connection, tables: list[str]) -> Finding:
    from sqlalchemy import text

    user = connection.scalar(text("SELECT current_user"))
    missing = [
        table
        for table in tables
        if not connection.scalar(
            text("SELECT has_table_privilege(:t, 'SELECT,INSERT,UPDATE,DELETE')"), {"t": table}
        )
    ]
    if missing:
        return Finding(
            part,
            Level.FAIL,
            f"user {user} may not read and write {', '.join(missing)}",
            f"as the tables' owner: GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN "
            f"SCHEMA public TO {user}",
        )
    create = connection.scalar(text("SELECT has_schema_privilege(current_schema(), 'CREATE')"))
    if not create:
        return Finding(
            part,
            Level.WARN,
            f"user {user} may use the tables but not create new ones: a later version's "
            "migrations will need an owner to run them",
        )
    return Finding(part, Level.OK, f"user {user} may read, write and migrate")


def _missing_sqlite_file(part: str, path: Path) -> Finding | None:
    """A finding for an SQLite file not made yet (connecting would make it): None if it is."""
    if str(path) in ("", ":memory:") or path.exists():
        return None
    parent = next((p for p in path.parents if p.exists()), None)
    if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK):
        return Finding(
            part,
            Level.FAIL,
            f"{path} does not exist and cannot be made",
            f"create {path.parent} and give this user write access",
        )
    return Finding(part, Level.OK, f"SQLite: {path} will be made at the first start")


def _sqlite_permissions(part: str, database: str | None) -> Finding:
    if not database or database == ":memory:":
        return Finding(part, Level.OK, "in memory")
    path = Path(database)
    directory = path.parent
    if not os.access(directory, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return Finding(
            part, Level.FAIL, f"cannot write {path}", f"give this user write access to {directory}"
        )
    return Finding(part, Level.OK, f"{path} writable (one machine only)")


# ----------------------------------------------------------------------- event store


def _event_store(settings: Settings) -> list[Finding]:
    url = settings.resolved_event_store_url
    if url.startswith("duckdb:///"):
        return _duckdb(Path(url.removeprefix("duckdb:///")))
    if url.startswith(("clickhouse://", "clickhouses://")):
        return _clickhouse(url)
    return [
        Finding(
            "event store",
            Level.FAIL,
            f"unsupported event store URL {url!r}",
            "set MPO_EVENT_STORE_URL=duckdb:///PATH or clickhouse://HOST:9000/DATABASE",
        )
    ]


#: the tables the ClickHouse store makes (and finds) in its database
CLICKHOUSE_TABLES = ("catalog", "ingest_keys", "rollup", "write_marks")


def _clickhouse(url: str) -> list[Finding]:
    from clickhouse_driver import Client
    from clickhouse_driver import errors as ch_errors

    from mpo_realtime.store.clickhouse_sql import quote_ident
    from mpo_realtime.store.clickhouse_store import parse_url

    part = "event store"
    driver_url, database, _ = parse_url(url)
    shown = _redacted(url.split("?", 1)[0])
    client = Client.from_url(driver_url + ("&" if "?" in driver_url else "?") + "connect_timeout=5")
    failures = (ch_errors.Error, OSError, EOFError)
    try:
        try:
            version = client.execute("SELECT version()")[0][0]
        except failures as exc:
            return [
                Finding(
                    part,
                    Level.FAIL,
                    f"cannot reach ClickHouse at {shown}: {exc}",
                    "check MPO_EVENT_STORE_URL (the native port, 9000 by default, not HTTP's "
                    "8123), that clickhouse-server runs and listens on this address "
                    "(listen_host), and the user and password",
                )
            ]
        findings = [Finding(part, Level.OK, f"ClickHouse {version} at {shown}")]
        rows = client.execute(
            "SELECT name FROM system.tables WHERE database = %(db)s", {"db": database}
        )
        present = {row[0] for row in rows}
        missing = [t for t in CLICKHOUSE_TABLES if t not in present]
        if not missing:
            findings.append(Finding(part, Level.OK, f"database {database}: every table present"))
        elif len(missing) < len(CLICKHOUSE_TABLES):
            findings.append(
                Finding(
                    part,
                    Level.FAIL,
                    f"database {database} lacks {', '.join(missing)}",
                    "start any mpo process on it once: the store creates missing tables",
                )
            )
        else:
            findings.append(
                Finding(part, Level.OK, f"database {database}: tables made at the first start")
            )
        probe = f"{quote_ident(database)}.{quote_ident('doctor_' + uuid.uuid4().hex)}"
        try:
            client.execute(f"CREATE DATABASE IF NOT EXISTS {quote_ident(database)}")
            client.execute(f"CREATE TABLE {probe} (x UInt8) ENGINE = Memory")
            client.execute(f"INSERT INTO {probe} (x) VALUES", [(1,)])
            client.execute(f"DROP TABLE {probe}")
            findings.append(Finding(part, Level.OK, "may create tables, insert and drop"))
        except failures as exc:
            findings.append(
                Finding(
                    part,
                    Level.FAIL,
                    f"this user may not create tables or insert in {database}: {exc}",
                    "use a user that is not readonly and may CREATE, INSERT, SELECT and "
                    "ALTER ... DELETE in that database (users.xml or GRANT)",
                )
            )

        def clickhouse_now() -> datetime:
            seconds = client.execute("SELECT toUnixTimestamp(now())")[0][0]
            # whole seconds: half a second is the middle of what the server could mean
            return datetime.fromtimestamp(seconds + 0.5, UTC)

        findings.append(_skew(part, clickhouse_now))
        return findings
    finally:
        client.disconnect()


def _duckdb(path: Path) -> list[Finding]:
    import duckdb

    part = "event store"
    version = f"DuckDB {duckdb.__version__}"
    if str(path) == ":memory:":
        return [Finding(part, Level.OK, f"{version} in memory (one process)")]
    directory = path.parent
    if not directory.exists():
        return [Finding(part, Level.OK, f"{version}: {path} will be made at the first start")]
    if not os.access(directory, os.W_OK):
        return [
            Finding(
                part,
                Level.FAIL,
                f"cannot write in {directory}",
                f"give this user write access to {directory}",
            )
        ]
    if not path.exists():
        return [Finding(part, Level.OK, f"{version}: {path} will be made at the first start")]
    try:
        connection = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        if "lock" in str(exc).lower():
            return [
                Finding(
                    part,
                    Level.OK,
                    f"{version}: {path} is open in a running mpo process (not inspected)",
                )
            ]
        return [Finding(part, Level.FAIL, f"cannot open {path}: {exc}", "restore it from backup")]
    try:
        tables = {row[0] for row in connection.execute("SHOW TABLES").fetchall()}
    finally:
        connection.close()
    if "rollup" not in tables:
        return [Finding(part, Level.FAIL, f"{path} holds no roll-up table: not an event store")]
    return [Finding(part, Level.OK, f"{version}: {path} (one process only)")]


# ----------------------------------------------------------------------- rate limits


def _rate_limits(settings: Settings) -> list[Finding]:
    part = "rate limits"
    url = settings.rate_limit_storage_url
    if url.startswith("memory://"):
        return [Finding(part, Level.OK, "in memory (one process)")]
    if not url.startswith(("redis://", "rediss://")):
        return [Finding(part, Level.OK, f"{url.split('://')[0]} storage (not inspected)")]
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
    try:
        try:
            info = client.info("server")
        except redis.RedisError as exc:
            return [
                Finding(
                    part,
                    Level.FAIL,
                    f"cannot reach Redis at {_redacted(url)}: {exc}",
                    "check MPO_RATE_LIMIT_STORAGE_URL and that Redis runs and accepts this "
                    "machine (bind, protected-mode, requirepass)",
                )
            ]
        findings = [
            Finding(part, Level.OK, f"Redis {info.get('redis_version', '?')} at {_redacted(url)}")
        ]
        probe = f"{settings.rate_limit_namespace}:doctor:{uuid.uuid4().hex}"
        try:
            client.set(probe, "1", ex=10)
            client.delete(probe)
            findings.append(Finding(part, Level.OK, "may write and delete keys"))
        except redis.RedisError as exc:
            findings.append(
                Finding(
                    part,
                    Level.FAIL,
                    f"cannot write keys: {exc}",
                    f"allow this user SET, DEL and scripts on keys "
                    f"{settings.rate_limit_namespace}:* (Redis ACL)",
                )
            )

        def redis_now() -> datetime:
            seconds, micros = client.time()
            return datetime.fromtimestamp(seconds + micros / 1e6, UTC)

        findings.append(_skew(part, redis_now))
        return findings
    finally:
        client.close()


def _redacted(url: str) -> str:
    if "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://***@{rest.split('@', 1)[1]}"


# ---------------------------------------------------------------------- export files


def _export_dir(settings: Settings) -> list[Finding]:
    part = "export files"
    root = settings.resolved_export_dir
    if not root.exists():
        parent = next((p for p in root.parents if p.exists()), None)
        if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK):
            return [
                Finding(
                    part,
                    Level.FAIL,
                    f"{root} does not exist and cannot be made",
                    f"create {root} and give this user write access (MPO_EXPORT_DIR)",
                )
            ]
        return [Finding(part, Level.OK, f"{root} will be made at the first start")]
    probe = root / f".doctor-{uuid.uuid4().hex}"
    try:
        probe.write_bytes(b"probe")
        probe.unlink()
    except OSError as exc:
        return [
            Finding(
                part,
                Level.FAIL,
                f"cannot write in {root}: {exc.strerror or exc}",
                f"give this user write access to {root} (on every machine that mounts it)",
            )
        ]
    free = shutil.disk_usage(root).free
    if free < MIN_FREE_BYTES:
        return [
            Finding(
                part,
                Level.WARN,
                f"{root} has {free / 2**20:.0f} MiB free: large exports will fail",
                "free space or give MPO_EXPORT_DIR a larger volume",
            )
        ]
    return [Finding(part, Level.OK, f"{root} writable, {free / 2**30:.1f} GiB free")]


# ----------------------------------------------------------------------- signing key


def _signing_key(settings: Settings) -> list[Finding]:
    from mpo_realtime.deployment import signing_key_warning

    part = "signing key"
    warning = signing_key_warning(settings)
    if warning is not None:
        return [
            Finding(
                part,
                Level.WARN,
                "MPO_SIGNING_KEY is not set and the job store is shared: API processes on "
                "other machines sign with other keys and refuse each other's tokens",
                "set the same MPO_SIGNING_KEY (e.g. from `openssl rand -base64 32`) on "
                "every machine",
            )
        ]
    if settings.signing_key:
        if len(settings.signing_key) < 32:
            return [
                Finding(
                    part,
                    Level.FAIL,
                    f"MPO_SIGNING_KEY has {len(settings.signing_key)} characters: too short "
                    "to resist guessing",
                    "use at least 32 random characters (`openssl rand -base64 32`)",
                )
            ]
        return [Finding(part, Level.OK, "MPO_SIGNING_KEY set")]
    path = settings.data_dir / "signing.key"
    where = "in" if path.exists() else "made at the first start in"
    return [Finding(part, Level.OK, f"key {where} {path} (this machine only)")]
