"""What every command shares: the consoles, the exit codes, and one way to fail."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

console = Console()
errors = Console(stderr=True)

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 1, 2, 130
TRACK_HELP = "random_teacher, single_ar or mqar"


def fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    """One red line on stderr, then the exit code that says why."""
    errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def print_json(data) -> None:
    from synth.reporting.queries import strict_json

    sys.stdout.write(strict_json(data) + "\n")


def open_run(run_dir: Path):
    from population.db import RunDB, RunDirError

    try:
        return RunDB.open(run_dir)
    except RunDirError as err:
        fail(str(err))
