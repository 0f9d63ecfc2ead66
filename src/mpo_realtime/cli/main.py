"""The ``mpo`` command: the composition root of the command line.

Command modules import only typer and plain defaults at import time; what a command
needs (settings, stores, the server, the HTTP client) is imported when it runs. The
report client's commands (``mpo report``, ``mpo login``), whose modules import the
HTTP client, and ``mpo migrate-events`` are loaded only when invoked: ``mpo --help``
lists them from the descriptions below (a test keeps those equal to the commands' own).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from mpo_realtime import __version__
from mpo_realtime.cli.clients import clients_app
from mpo_realtime.cli.doctor import doctor
from mpo_realtime.cli.local import demo_env, simulate
from mpo_realtime.cli.processes import serve, worker

__all__ = ["LAZY_COMMANDS", "LazyCommand", "app", "main"]


@dataclass(frozen=True, slots=True)
class LazyCommand:
    """A command whose module is imported only when the command runs."""

    module: str
    attribute: str
    #: the command's help, as its docstring or Typer(help=...) has it (a test checks)
    help: str

    def load(self, name: str) -> Any:
        target = getattr(importlib.import_module(self.module), self.attribute)
        # built as the root would build it: in the root's plain (non-rich) help style
        holder = typer.Typer(rich_markup_mode=None)
        if isinstance(target, typer.Typer):
            holder.add_typer(target, name=name)
        else:
            holder.command(name)(target)
        return typer.main.get_group(holder).commands[name]


LAZY_COMMANDS = {
    "report": LazyCommand(
        "mpo_realtime.client.report_cli",
        "report_app",
        "Get a report: create an export, wait for it, download it (or resume one by ID).",
    ),
    "migrate-events": LazyCommand(
        "mpo_realtime.cli.migrate",
        "migrate_events_command",
        "Copy the embedded event store's roll-up into ClickHouse, one UTC day at a time.",
    ),
    "login": LazyCommand(
        "mpo_realtime.client.report_cli",
        "login",
        "Save the service URL and client credentials for `mpo report` (file mode 0600).",
    ),
}


class _LazyGroup(TyperGroup):
    """Typer's group, with :data:`LAZY_COMMANDS` loaded on first use."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *LAZY_COMMANDS]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        lazy = LAZY_COMMANDS.get(cmd_name)
        if lazy is not None and cmd_name not in self.commands:
            self.commands[cmd_name] = lazy.load(cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            lazy = LAZY_COMMANDS.get(name)
            if lazy is not None and name not in self.commands:
                # a stand-in with the same help: shortened as the command's would be
                command = TyperCommand(name, help=lazy.help)
            else:
                command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


app = typer.Typer(
    cls=_LazyGroup,
    help="mpo-realtime: real-time marketplace ad reporting.",
    no_args_is_help=True,
    # click's plain help: flags show as flags, not as options taking a <bool>
    rich_markup_mode=None,
)
app.add_typer(clients_app, name="clients")


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


app.command()(serve)
app.command()(worker)
app.command()(doctor)
app.command("demo-env")(demo_env)
app.command()(simulate)


def main() -> None:
    app()
