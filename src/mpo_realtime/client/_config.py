"""Small value objects that configure a client: polling, retries, credentials."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mpo_realtime.client._errors import ClientError

__all__ = [
    "ENV_CLIENT_ID",
    "ENV_CLIENT_SECRET",
    "ENV_CONFIG",
    "ENV_URL",
    "Credentials",
    "PollPolicy",
    "RetryPolicy",
    "default_config_path",
    "read_config",
    "write_config",
]

ENV_URL = "MPO_URL"
ENV_CLIENT_ID = "MPO_CLIENT_ID"
ENV_CLIENT_SECRET = "MPO_CLIENT_SECRET"
ENV_CONFIG = "MPO_CONFIG"


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """How often to poll a Pending export.

    The first poll comes ``first`` seconds after the create (exports here usually take
    tens of milliseconds), then each wait is ``factor`` times the previous, up to
    ``maximum``: the 5-10 s the API's document asks of clients that wait long. A
    ``Retry-After`` on a poll's answer is always honoured: the next poll comes no sooner.
    """

    first: float = 0.1
    factor: float = 2.0
    maximum: float = 10.0

    def __post_init__(self) -> None:
        if self.first <= 0 or self.factor < 1 or self.maximum < self.first:
            raise ValueError("PollPolicy needs 0 < first <= maximum and factor >= 1")

    def delays(self) -> Iterator[float]:
        delay = self.first
        while True:
            yield delay
            delay = min(self.maximum, delay * self.factor)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries of one request on 429, 5xx (502, 503, 504, 500) and connection errors.

    ``attempts`` counts every try, the first included. A ``Retry-After`` is waited as the
    server says, plus up to 10 % of jitter so that many clients do not come back at the
    same instant; without one, the wait doubles from ``backoff`` up to ``maximum_backoff``
    with "equal jitter" (half fixed, half random). A ``Retry-After`` longer than
    ``max_retry_after`` is not waited for: the error is raised at once with its
    ``retry_after``, for the caller to schedule.
    """

    attempts: int = 5
    backoff: float = 0.5
    maximum_backoff: float = 30.0
    max_retry_after: float = 120.0
    statuses: frozenset[int] = field(default=frozenset({429, 500, 502, 503, 504}))

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.backoff < 0 or self.maximum_backoff < self.backoff:
            raise ValueError("RetryPolicy needs attempts >= 1 and 0 <= backoff <= maximum")

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float | None:
        """Seconds to wait before try ``attempt + 1``; None when no retry is allowed."""
        if attempt >= self.attempts:
            return None
        if retry_after is not None:
            if retry_after > self.max_retry_after:
                return None
            return retry_after + rng.uniform(0, max(0.05, retry_after / 10))
        ceiling = min(self.maximum_backoff, self.backoff * 2.0 ** (attempt - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


@dataclass(frozen=True, slots=True)
class Credentials:
    """Where the service is and who calls it."""

    base_url: str
    client_id: str
    client_secret: str = field(repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Credentials:
        """From ``MPO_URL``, ``MPO_CLIENT_ID`` and ``MPO_CLIENT_SECRET``."""
        env = os.environ if environ is None else environ
        names = (ENV_URL, ENV_CLIENT_ID, ENV_CLIENT_SECRET)
        missing = [name for name in names if not env.get(name)]
        if missing:
            raise ClientError(f"set {', '.join(missing)} in the environment")
        return cls(env[ENV_URL], env[ENV_CLIENT_ID], env[ENV_CLIENT_SECRET])


def default_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """``MPO_CONFIG``, else ``$XDG_CONFIG_HOME/mpo/config.toml`` (``~/.config`` by default)."""
    env = os.environ if environ is None else environ
    if env.get(ENV_CONFIG):
        return Path(env[ENV_CONFIG]).expanduser()
    base = Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "mpo" / "config.toml"


def read_config(path: Path) -> dict[str, str]:
    """The ``url``, ``client_id`` and ``client_secret`` of a config file (empty if none)."""
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ClientError(f"cannot read config file {path}: {exc}") from exc
    section = data.get("default", data)
    return {k: v for k, v in section.items() if isinstance(v, str)}


def write_config(path: Path, values: Mapping[str, str]) -> None:
    """Write the config file readable by its owner only (0600), whole or not at all."""
    import json
    import secrets

    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # JSON string escapes are valid TOML basic-string escapes
    lines = ["# written by `mpo login`; readable by its owner only", "[default]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.part")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write("\n".join(lines) + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
