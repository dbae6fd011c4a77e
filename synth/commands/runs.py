"""Reading a run: its leaderboard, a candidate's lineage, its LLM calls, the report and its figures.

Plain functions with typer options; cli.py registers them as commands.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from synth.commands.common import console, fail, open_run, print_json


def show(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    top: int = typer.Option(10, "--top", "-k", min=1, help="How many candidates."),
    as_json: bool = typer.Option(False, "--json", help="Print the leaderboard as JSON."),
) -> None:
    """The run's leaderboard, operator statistics and LLM spend."""
    from synth.reporting.queries import leaderboard
    from synth.reporting.tables import render_leaderboard

    db = open_run(run_dir)
    with db:
        board = leaderboard(db, top)
    if as_json:
        print_json(board)
    else:
        render_leaderboard(console, board)


def lineage(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    candidate: Optional[int] = typer.Argument(None, help="Candidate id (default: the best)."),
    diff: bool = typer.Option(False, "--diff", help="Show the code change along each edge."),
    as_json: bool = typer.Option(False, "--json", help="Print the ancestry as JSON."),
    dot: bool = typer.Option(False, "--dot", help="Print the ancestry graph as Graphviz DOT."),
) -> None:
    """Who begat whom: the ancestry of a candidate back to its seeds."""
    from synth.reporting.queries import ancestry, ancestry_dot, resolve_candidate
    from synth.reporting.tables import render_ancestry

    db = open_run(run_dir)
    with db:
        try:
            cand_id = resolve_candidate(db, candidate)
        except ValueError as err:
            fail(str(err))
        chain = ancestry(db, cand_id)
        if dot:
            sys.stdout.write(ancestry_dot(db, cand_id))
        elif as_json:
            print_json(chain)
        else:
            render_ancestry(console, chain, with_diff=diff)


def llm_calls(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    candidate: Optional[int] = typer.Argument(None, help="Only the calls that made this candidate."),
    full: bool = typer.Option(True, "--full/--table", help="Print each prompt and reply (default), or the table only."),
    as_json: bool = typer.Option(False, "--json", help="Print the calls as JSON."),
) -> None:
    """A run's LLM calls: prompts, replies, outcomes, tokens, cost and latency."""
    from synth.llm.log import call_rows, render_calls

    db = open_run(run_dir)
    with db:
        if candidate is not None and db.get_candidate(candidate) is None:
            fail(f"no candidate {candidate} in this run")
        rows = call_rows(db, candidate)
    if as_json:
        print_json(rows)
    else:
        render_calls(console, rows, full)


def report(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="HTML file (default RUN_DIR/report.html)."),
    baseline: Optional[Path] = typer.Option(None, "--baseline", help="A `synth baseline` run on the same track to compare against at equal cost."),
) -> None:
    """One self-contained HTML page: progress, generations, operators, the elite's lineage, top table."""
    from synth.reporting.html import write_report

    db = open_run(run_dir)
    reference = open_run(baseline) if baseline is not None else None
    if reference is not None and reference.config().get("track") != db.config().get("track"):
        fail(f"{baseline} is a run on track {reference.config().get('track')}, {run_dir} on "
             f"{db.config().get('track')}: compare runs of one track")
    with db:
        try:
            path = write_report(db, out or run_dir / "report.html", baseline=reference)
        finally:
            if reference is not None:
                reference.close()
    console.print(f"wrote {path}")


def plot(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    what: str = typer.Option("progress", "--what", help="progress, operators or lineage."),
    out: Path = typer.Option(..., "--out", "-o", help="Image file: .png, .svg or .pdf."),
) -> None:
    """The report's figures as PNG, SVG or PDF (matplotlib), for papers and issues."""
    from synth.reporting.png import FORMATS, write_plot

    if what not in ("progress", "operators", "lineage"):
        fail(f"--what must be progress, operators or lineage, not {what!r}")
    if out.suffix.lower().lstrip(".") not in FORMATS:
        fail(f"--out {out}: unknown image suffix {out.suffix or '(none)'!r}; use .png, .svg or .pdf")
    db = open_run(run_dir)
    with db:
        try:
            path = write_plot(db, what, out)
        except OSError as err:
            fail(f"--out {out}: {err.strerror or err}")
    console.print(f"wrote {path}")
