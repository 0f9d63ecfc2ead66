"""``mpo doctor``: check the configured backends; exit 1 when something is wrong."""

from __future__ import annotations

from typing import Annotated

import typer

from mpo_realtime.cli.common import DATA_DIR, DataDir, errors_to_exit

__all__ = ["doctor"]


@errors_to_exit
def doctor(
    data_dir: DataDir = DATA_DIR,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Check every configured backend: reachable, version, schema, permissions, clocks.

    Prints each finding, and for each problem how to fix it; exits 1 when something
    fails (warnings alone exit 0). Reads the same MPO_* settings as mpo serve and
    mpo worker: run it with their environment, on every machine.
    """
    import orjson
    from pydantic import ValidationError

    from mpo_realtime.cli.common import make_settings
    from mpo_realtime.doctor import Level, diagnose

    try:
        settings = make_settings(data_dir)
    except ValidationError as exc:
        typer.echo(f"FAIL settings: {exc}")
        raise typer.Exit(1) from None
    findings = diagnose(settings)
    if as_json:
        rows = [
            {"part": f.part, "level": f.level.value.lower(), "summary": f.summary, "fix": f.fix}
            for f in findings
        ]
        typer.echo(orjson.dumps(rows).decode())
    else:
        width = max(len(f.part) for f in findings)
        for finding in findings:
            typer.echo(f"{finding.level.value:<4}  {finding.part:<{width}}  {finding.summary}")
            if finding.fix:
                typer.echo(f"{'':<4}  {'':<{width}}  fix: {finding.fix}")
        failed = sum(f.level is Level.FAIL for f in findings)
        warned = sum(f.level is Level.WARN for f in findings)
        typer.echo(
            "all good" if not failed and not warned else f"{failed} problem(s), {warned} warning(s)"
        )
    if any(f.level is Level.FAIL for f in findings):
        raise typer.Exit(1)
