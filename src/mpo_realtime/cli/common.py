"""What every ``mpo`` command shares: the data-dir option, settings, errors to exit codes.

Imports stay light here and in every command module: heavy parts (pydantic settings,
stores, the HTTP client) are imported inside the commands, so that ``mpo --help`` and
a mistyped option answer at once.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from mpo_realtime.defaults import DATA_DIR as _DATA_DIR

if TYPE_CHECKING:
    from mpo_realtime.settings import Settings

__all__ = ["DATA_DIR", "DataDir", "errors_to_exit", "fail", "make_settings", "say"]

DataDir = Annotated[
    Path,
    typer.Option("--data-dir", envvar="MPO_DATA_DIR", help="Directory for local state."),
]
DATA_DIR: Path = _DATA_DIR
F = TypeVar("F", bound=Callable[..., Any])


def make_settings(data_dir: Path | None, **overrides: Any) -> Settings:
    """Settings from the environment (``MPO_*``), with the options given on the command line."""
    from mpo_realtime.settings import Settings

    values = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    return Settings(**values)


def errors_to_exit(fn: F) -> F:
    """Print the chain of causes of an mpo error and exit 1, instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            import httpx

            from mpo_realtime.domain.errors import MpoError

            if not isinstance(exc, MpoError | httpx.HTTPError):
                raise
            fail(f"error: {exc}", code=1)

    return wrapper  # type: ignore[return-value]


def fail(text: str, *, code: int = 2) -> NoReturn:
    """Print ``text`` on standard error and exit with ``code`` (2: a usage error)."""
    print(text, file=sys.stderr, flush=True)
    raise typer.Exit(code)


def say(text: str) -> None:
    """A line for the person at the terminal, on standard output, at once."""
    print(text, flush=True)
