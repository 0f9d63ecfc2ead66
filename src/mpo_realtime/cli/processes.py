"""``mpo serve`` and ``mpo worker``: the processes of both deployments."""

from __future__ import annotations

from typing import Annotated

import typer

from mpo_realtime.cli.common import DATA_DIR, DataDir, errors_to_exit, fail, make_settings, say
from mpo_realtime.defaults import HOST, PORT

__all__ = ["serve", "worker"]


@errors_to_exit
def serve(
    data_dir: DataDir = DATA_DIR,
    host: Annotated[str, typer.Option(envvar="MPO_HOST", help="Bind address.")] = HOST,
    port: Annotated[int, typer.Option(envvar="MPO_PORT", help="Bind port.")] = PORT,
    demo: Annotated[
        bool,
        typer.Option("--demo", help="Back-fill simulated history, run live traffic, demo client."),
    ] = False,
    demo_hours: Annotated[float, typer.Option(help="Hours of history for --demo.")] = 3.0,
    demo_rate: Annotated[int, typer.Option(help="Live events per second for --demo.")] = 200,
    no_runner: Annotated[
        bool,
        typer.Option(
            "--no-runner",
            help="Serve the API only: no export runners, no sweeper (mpo worker runs them).",
        ),
    ] = False,
    processes: Annotated[
        int,
        typer.Option(
            min=1,
            help="API processes on the one port; more than 1 needs shared stores "
            "(ClickHouse, PostgreSQL, Redis: see docs/scale-out.md).",
        ),
    ] = 1,
    listen_fd: Annotated[
        int | None,
        typer.Option(hidden=True, help="A listening socket inherited from --processes."),
    ] = None,
) -> None:
    """Run the whole system (HTTP API, ingestion, export runners, sweeper).

    SIGTERM or Ctrl+C stops it gracefully: in-flight requests and export jobs finish,
    the stores close, and the process exits 0.
    """
    settings = make_settings(data_dir, host=host, port=port)
    if processes > 1:
        if demo:
            fail("--demo runs in one process: leave out --processes")
        from mpo_realtime.supervisor import run_processes

        code = run_processes(settings, processes=processes, runners=not no_runner, say=say)
        raise typer.Exit(code)
    from mpo_realtime.serving import run

    run(
        settings,
        demo=demo,
        demo_hours=demo_hours,
        demo_rate=demo_rate,
        runners=not no_runner,
        listen_fd=listen_fd,
        say=say,
    )


@errors_to_exit
def worker(
    data_dir: DataDir = DATA_DIR,
    concurrency: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Export jobs run at once by this worker (default: MPO_RUNNER_CONCURRENCY).",
        ),
    ] = None,
) -> None:
    """Run export jobs and the sweeper without serving HTTP (the scale-out deployment).

    Needs a shared job store (PostgreSQL) and event store (ClickHouse), and the export
    directory the API processes serve files from. SIGTERM or Ctrl+C stops it gracefully:
    running jobs finish, or are released to another worker after the grace period.
    """
    from mpo_realtime.worker import run_worker

    run_worker(make_settings(data_dir, runner_concurrency=concurrency), say=say)
