"""The servers some tests need: PostgreSQL, Redis and ClickHouse, found or started.

Each function returns a :class:`Service` for one of them, in this order of preference:

1. the server at the given address (its standard one unless the caller says otherwise),
   when it answers: nothing is started, nothing is stopped;
2. else a throwaway server from the Debian package's binaries (``postgresql``,
   ``redis-server``, ``clickhouse-server``; ``make test`` installs them where they are
   absent and it runs as root), on free loopback ports, with every file in a temporary
   directory; :meth:`Service.stop` ends it by its PID and deletes the directory;
3. else :class:`Unavailable`, whose message says why and what to install.

Throwaway servers also end when the test process dies (``setpriv --pdeathsig``), so a
killed test run leaves no server behind on a shared machine.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from glob import glob
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import redis
from sqlalchemy.engine import make_url

__all__ = [
    "DEFAULT_CLICKHOUSE_HTTP_URL",
    "DEFAULT_CLICKHOUSE_URL",
    "DEFAULT_POSTGRES_URL",
    "DEFAULT_REDIS_URL",
    "Service",
    "Unavailable",
    "clickhouse",
    "clickhouse_query",
    "free_port",
    "postgres",
    "redis_server",
]

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_CLICKHOUSE_URL = "clickhouse://127.0.0.1:9000/default"
DEFAULT_CLICKHOUSE_HTTP_URL = "http://127.0.0.1:8123"
#: how long a throwaway server may take to answer (initdb and a busy shared machine)
START_TIMEOUT = 60.0


class Unavailable(Exception):
    """The service is not running and no throwaway one could be started; says why."""


@dataclass
class Service:
    """A server the tests may use; ``process`` is ``None`` for one that was already there."""

    name: str
    url: str
    process: subprocess.Popen[bytes] | None = None
    directory: Path | None = None
    http_url: str | None = None
    #: the signal that stops the server quickly and cleanly
    stop_signal: int = signal.SIGTERM
    log: Path | None = None
    _stopped: bool = field(default=False, repr=False)

    @property
    def throwaway(self) -> bool:
        return self.process is not None

    def stop(self) -> None:
        """End a throwaway server by its PID and delete its files; nothing for a found one."""
        if self._stopped:
            return
        self._stopped = True
        if self.process is not None:
            _end(self.process, self.stop_signal)
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)


def free_port() -> int:
    """A loopback port nothing listens on (another process may take it before we do)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------------------- PostgreSQL


def postgres(url: str = DEFAULT_POSTGRES_URL) -> Service:
    """PostgreSQL at ``url`` (a SQLAlchemy URL whose user may create databases)."""
    if _postgres_answers(url):
        return Service("PostgreSQL", url)
    bin_dir = _postgres_bin_dir()
    return _with_retries("PostgreSQL", lambda: _start_postgres(url, bin_dir))


def _postgres_answers(url: str, timeout: float = 3) -> bool:
    parsed = make_url(url)
    try:
        with psycopg.connect(
            host=parsed.host,
            port=parsed.port or 5432,
            user=parsed.username,
            password=parsed.password,
            dbname=parsed.database,
            connect_timeout=max(1, int(timeout)),
        ) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


def _postgres_bin_dir() -> Path:
    found = sorted(glob("/usr/lib/postgresql/*/bin/postgres"), key=_version_key)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("postgres")
    if on_path and shutil.which("initdb"):
        return Path(on_path).parent
    raise Unavailable(
        "PostgreSQL does not answer and its server is not installed "
        "(apt-get install postgresql; `make test` does it when run as root)"
    )


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parent.parent.name
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def _start_postgres(url: str, bin_dir: Path) -> Service:
    parsed = make_url(url)
    user = parsed.username or "postgres"
    port = free_port()
    directory = _temp_dir("postgres")
    run_as = _unprivileged_user("postgres")
    if run_as is not None:
        # PostgreSQL refuses to run as root: its files belong to the postgres user
        os.chown(directory, run_as.pw_uid, run_as.pw_gid)
    log = directory / "server.log"
    initdb = subprocess.run(
        [
            str(bin_dir / "initdb"),
            "--pgdata",
            str(directory / "data"),
            "--username",
            user,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--no-sync",
        ],
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        cwd=directory,
        user=run_as.pw_uid if run_as else None,
        group=run_as.pw_gid if run_as else None,
        check=False,
    )
    if initdb.returncode != 0:
        shutil.rmtree(directory, ignore_errors=True)
        raise Unavailable(f"initdb failed: {initdb.stderr.strip()[-500:]}")
    command = [
        str(bin_dir / "postgres"),
        "-D",
        str(directory / "data"),
        "-p",
        str(port),
        "-k",
        str(directory),
        "-c",
        "listen_addresses=127.0.0.1",
        # a throwaway server: durability buys nothing, speed does
        "-c",
        "fsync=off",
        "-c",
        "synchronous_commit=off",
        "-c",
        "full_page_writes=off",
        "-c",
        "max_connections=200",
    ]
    process = _spawn(command, log, user=run_as)
    service = Service(
        "PostgreSQL",
        parsed.set(host="127.0.0.1", port=port, username=user).render_as_string(
            hide_password=False
        ),
        process=process,
        directory=directory,
        # fast shutdown: a smart one (SIGTERM) waits for every client to leave
        stop_signal=signal.SIGINT,
        log=log,
    )
    admin = parsed.set(host="127.0.0.1", port=port, username=user, database="postgres")
    _wait(service, lambda: _postgres_answers(admin.render_as_string(hide_password=False), 1))
    if parsed.database and parsed.database != "postgres":
        with psycopg.connect(
            host="127.0.0.1", port=port, user=user, dbname="postgres", autocommit=True
        ) as connection:
            connection.execute(f'CREATE DATABASE "{parsed.database}"')
    return service


# --------------------------------------------------------------------------------- Redis


def redis_server(url: str = DEFAULT_REDIS_URL) -> Service:
    """Redis at ``url`` (``redis://host:port/db``)."""
    if _redis_answers(url):
        return Service("Redis", url)
    binary = _binary("redis-server", package="redis-server", name="Redis")
    return _with_retries("Redis", lambda: _start_redis(url, binary))


def _redis_answers(url: str, timeout: float = 3) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _start_redis(url: str, binary: str) -> Service:
    port = free_port()
    directory = _temp_dir("redis")
    log = directory / "server.log"
    command = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(directory),
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
    ]
    process = _spawn(command, log)
    database = urlsplit(url).path.lstrip("/") or "0"
    service = Service(
        "Redis",
        f"redis://127.0.0.1:{port}/{database}",
        process=process,
        directory=directory,
        log=log,
    )
    _wait(service, lambda: _redis_answers(service.url, 1))
    return service


# ---------------------------------------------------------------------------- ClickHouse


def clickhouse(
    url: str = DEFAULT_CLICKHOUSE_URL, http_url: str = DEFAULT_CLICKHOUSE_HTTP_URL
) -> Service:
    """ClickHouse: ``url`` is its native protocol address, ``http_url`` its HTTP one.

    A running server counts only when its HTTP port answers ``/ping`` and its native
    port takes connections.
    """
    parsed = make_url(url)
    if _clickhouse_answers(http_url) and _port_open(parsed.host or "", parsed.port or 9000):
        return Service("ClickHouse", url, http_url=http_url)
    binary = _binary("clickhouse-server", package="clickhouse-server", name="ClickHouse")
    config = Path("/etc/clickhouse-server/config.xml")
    if not config.exists():
        raise Unavailable(f"ClickHouse's packaged configuration {config} is missing")
    return _with_retries("ClickHouse", lambda: _start_clickhouse(parsed.database, binary, config))


def clickhouse_query(service: Service, query: str, timeout: float = 10) -> str:
    """Run ``query`` through the HTTP interface; the answer's text."""
    assert service.http_url is not None
    request = urllib.request.Request(service.http_url + "/", data=query.encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            text: str = answer.read().decode()
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"ClickHouse refused {query!r}: {exc.read().decode()}") from exc
    return text


def _clickhouse_answers(http_url: str, timeout: float = 3) -> bool:
    try:
        with urllib.request.urlopen(http_url + "/ping", timeout=timeout) as answer:
            return bool(answer.read().strip() == b"Ok.")
    except (OSError, urllib.error.URLError):
        return False


def _start_clickhouse(database: str | None, binary: str, packaged: Path) -> Service:
    native, http = free_port(), free_port()
    directory = _temp_dir("clickhouse")
    _clickhouse_config(packaged, directory, native=native, http=http)
    log = directory / "log" / "console.log"
    log.parent.mkdir()
    process = _spawn([binary, f"--config-file={directory / 'config.xml'}"], log)
    service = Service(
        "ClickHouse",
        f"clickhouse://127.0.0.1:{native}/{database or 'default'}",
        process=process,
        directory=directory,
        http_url=f"http://127.0.0.1:{http}",
        log=log,
    )
    _wait(service, lambda: _clickhouse_answers(f"http://127.0.0.1:{http}", 1))
    if database and database != "default":
        clickhouse_query(service, f"CREATE DATABASE IF NOT EXISTS `{database}`")
    return service


def _clickhouse_config(packaged: Path, directory: Path, *, native: int, http: int) -> None:
    """The packaged config with its ports, listen address and every path in ``directory``.

    Secure and inter-server ports are dropped (no certificates, one server), and so is
    the ``::1`` listener, which fails where IPv6 is off.
    """
    tree = ET.parse(packaged)
    root = tree.getroot()
    for tag in (
        "https_port",
        "tcp_port_secure",
        "interserver_http_port",
        "interserver_http_host",
        "mysql_port",
        "postgresql_port",
        "listen_host",
    ):
        for element in root.findall(tag):
            root.remove(element)
    values = {
        "listen_host": "127.0.0.1",
        "tcp_port": str(native),
        "http_port": str(http),
        "path": f"{directory / 'data'}/",
        "tmp_path": f"{directory / 'tmp'}/",
        "user_files_path": f"{directory / 'user_files'}/",
        "format_schema_path": f"{directory / 'format_schemas'}/",
    }
    for tag, value in values.items():
        found = root.find(tag)
        (ET.SubElement(root, tag) if found is None else found).text = value
    logger = root.find("logger")
    if logger is not None:
        for tag, name in (("log", "server.log"), ("errorlog", "server.err.log")):
            path = logger.find(tag)
            if path is not None:
                path.text = str(directory / "log" / name)
    users = root.find("users_config")
    users_file = users.text if users is not None and users.text else "users.xml"
    source = Path(users_file) if Path(users_file).is_absolute() else packaged.parent / users_file
    if source.exists():
        shutil.copy(source, directory / Path(users_file).name)
        if users is not None:
            users.text = Path(users_file).name
    tree.write(directory / "config.xml", encoding="utf-8", xml_declaration=True)


# --------------------------------------------------------------------------------- common


def _binary(binary: str, *, package: str, name: str) -> str:
    found = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/bin:/sbin")
    if found is None:
        raise Unavailable(
            f"{name} does not answer and {binary} is not installed "
            f"(apt-get install {package}; `make test` does it when run as root)"
        )
    return found


def _unprivileged_user(name: str) -> pwd.struct_passwd | None:
    """The account to run a server as when we are root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(name)
    except KeyError as exc:
        raise Unavailable(f"running as root, but there is no {name!r} user to run as") from exc


def _temp_dir(name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"mpo-test-{name}-"))


def _spawn(
    command: list[str], log: Path, *, user: pwd.struct_passwd | None = None
) -> subprocess.Popen[bytes]:
    setpriv = shutil.which("setpriv")
    if setpriv is not None:
        # the server ends with the test process, even when that one is killed
        command = [setpriv, "--pdeathsig", "TERM", "--", *command]
    with log.open("ab") as out:
        if user is not None:
            os.chown(log, user.pw_uid, user.pw_gid)
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=log.parent,
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            start_new_session=True,
        )


def _wait(service: Service, answers: Callable[[], bool]) -> None:
    """Wait until the new server answers; stop it and raise if it dies or never does."""
    assert service.process is not None
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            break
        if answers():
            return
        time.sleep(0.1)
    tail = service.log.read_text(errors="replace")[-1500:] if service.log else ""
    exited = service.process.poll()
    service.stop()
    state = f"exited with {exited}" if exited is not None else "did not answer in time"
    raise Unavailable(f"a throwaway {service.name} {state}: {tail.strip()}")


def _with_retries(name: str, start: Callable[[], Service], attempts: int = 3) -> Service:
    """Start a throwaway server, again on new ports if another process took ours."""
    failure: Unavailable | None = None
    for _ in range(attempts):
        try:
            return start()
        except Unavailable as exc:
            failure = exc
    assert failure is not None
    raise Unavailable(f"could not start a throwaway {name}: {failure}")


def _port_open(host: str, port: int, timeout: float = 2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _end(process: subprocess.Popen[bytes], first: int) -> None:
    """Signal the server's PID, then kill it if it has not ended in time."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(first)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait(timeout=30)
