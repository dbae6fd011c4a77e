"""`synth evolve` end to end: workers, the optional LLM, the live view, the closing summary."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn
from rich.table import Table

from evaluator.sandbox import Limits
from population.db import RunDB
from synth.config import RunConfig
from synth.engine import Evolution, Progress

LLM_OFF = ("LLM edits are off (genetic operators only). Turn them on with --llm openai:MODEL "
           "(OPENAI_API_KEY), --llm anthropic:MODEL (ANTHROPIC_API_KEY) or --llm "
           "openai:MODEL@http://host:port/v1 for any OpenAI-compatible server, plus --llm-rate 0.3.")


def make_pool(cfg: RunConfig):
    limits = Limits(timeout_s=cfg.timeout_s, memory_mb=cfg.memory_mb)
    if cfg.backend == "ray":
        from evaluator.ray_backend import RayPool

        return RayPool(workers=cfg.workers, limits=limits, devices=cfg.devices, address=cfg.ray_address)
    from evaluator.pool import LocalPool

    return LocalPool(workers=cfg.workers, limits=limits, devices=cfg.devices)


def make_llm(cfg: RunConfig, db: RunDB, console: Console):
    """The LLM operators, or None with one clear line saying why they are off."""
    if not cfg.llm or cfg.llm_rate == 0:
        console.print(f"[yellow]{LLM_OFF}[/]" if not cfg.llm else
                      "[yellow]LLM configured but --llm-rate is 0: LLM edits are off.[/]", highlight=False)
        return None
    from synth.llm_variation import LLMVariation

    return LLMVariation(cfg, db, notice=lambda line: console.print(f"[yellow]{escape(line)}[/]", highlight=False))


def live_view(progress: Progress, bar: Bar, task) -> Group:
    bar.update(task, completed=progress.children, total=progress.children_total)
    stats = Table.grid(padding=(0, 2))
    stats.add_row("generation", f"{progress.generation} of {progress.generations}", "running", str(progress.running))
    stats.add_row("evaluations", str(progress.evaluations), "pending", str(progress.pending))
    stats.add_row("dedup hits", str(progress.dedup_hits), "invalid (probe)", str(progress.invalid))
    stats.add_row("failures", str(progress.failures), "evals/min", f"{progress.evals_per_minute:.1f}")
    if progress.screened:
        stats.add_row("screened (cascade)", str(progress.screened))
    best = (f"#{progress.best_id}  fitness {progress.best_fitness:.4f}  {progress.best_summary}"
            if progress.best_id is not None else "none yet")
    stats.add_row("best", best)
    program = Panel(progress.best_text or "-", title="best program", border_style="green")
    return Group(bar, stats, program)


def run_evolution(db: RunDB, cfg: RunConfig, run_dir: Path, resumed: bool, console: Console,
                  live: bool = True, time_budget_s: float | None = None) -> dict:
    word = "resuming" if resumed else "starting"
    console.print(f"{word} run [bold]{run_dir}[/]: track {cfg.track}, {cfg.generations} generations of "
                  f"{cfg.population}, seed {cfg.seed}", highlight=False)
    llm = make_llm(cfg, db, console)
    started = time.time()
    deadline = started + time_budget_s if time_budget_s is not None else None
    with make_pool(cfg) as pool:
        bar = Bar(TextColumn("children"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console)
        task = bar.add_task("children", total=cfg.generations * cfg.population)
        evolution = Evolution(db, cfg, pool, llm=llm, deadline=deadline)
        if live:
            with Live(console=console, refresh_per_second=4, transient=False) as view:
                evolution.on_progress = lambda p: view.update(live_view(p, bar, task))
                with console.status("building track data in the workers"):
                    pool.warm(cfg.track, steps=cfg.steps)
                progress = evolution.run()
                view.update(live_view(progress, bar, task))
        else:
            pool.warm(cfg.track, steps=cfg.steps)
            progress = evolution.run()
        if progress.stopped_by:
            console.print(f"[yellow]stopped by the {progress.stopped_by} after {progress.children} of "
                          f"{progress.children_total} children; the same command resumes.[/]", highlight=False)
        assess_finalists(db, cfg, pool, console, quiet=not live)
    summary = run_summary(db, progress, time.time() - started, run_dir)
    if live:
        print_summary(console, summary)
    return summary


def assess_finalists(db: RunDB, cfg: RunConfig, pool, console: Console, quiet: bool) -> None:
    """The top candidates, re-scored on held-out seeds and checked for compliance (synth/trust.py)."""
    from synth.trust import assess_and_record, passed

    finalists = [c for c in db.top(cfg.finalists * 4 + 10) if c.status == "scored"][:cfg.finalists]
    for cand in finalists:
        if db.get_state(f"compliance/{cand.id}") is not None:
            continue
        if quiet:
            report = assess_and_record(db, pool, cand, k=cfg.heldout)
        else:
            with console.status(f"finalist #{cand.id}: held-out seeds, gradient dependence, horizon"):
                report = assess_and_record(db, pool, cand, k=cfg.heldout)
            word = "[green]compliant[/]" if passed(report) else "[red]flagged[/]"
            held = report["heldout"]
            console.print(f"finalist #{cand.id}: {word}; held-out mean {held['mean']:.4g} ± {held['std']:.2g} "
                          f"over {held['k']} seed sets; " + "; ".join(
                              f"{k}: {v['verdict']}" for k, v in report.items()), highlight=False)


def run_summary(db: RunDB, progress: Progress, wall_s: float, run_dir: Path) -> dict:
    from synth.inspect import leaderboard

    board = leaderboard(db, 5)
    return {
        "run_dir": str(run_dir),
        "generation": progress.generation,
        "children": progress.children,
        "stopped_by": progress.stopped_by,
        "evaluations": progress.evaluations,
        "dedup_hits": progress.dedup_hits,
        "invalid": progress.invalid,
        "failures": progress.failures,
        "wall_s": round(wall_s, 1),
        "best": board["top"][0] if board["top"] else None,
        "operators": board["operators"],
        "llm": board["llm"],
        "cascade": board["cascade"],
    }


def print_summary(console: Console, summary: dict) -> None:
    from synth.inspect import render_leaderboard

    console.rule("summary")
    console.print(f"{summary['evaluations']} evaluations in {summary['wall_s']} s, {summary['dedup_hits']} dedup hits, "
                  f"{summary['invalid']} invalid children caught by the probe, {summary['failures']} failed runs")
    render_leaderboard(console, {"top": [summary["best"]] if summary["best"] else [], "operators": summary["operators"],
                                 "llm": summary["llm"], "track": None, "cascade": summary["cascade"]})
    console.print(f"next: synth show {summary['run_dir']} | synth lineage {summary['run_dir']} --diff | "
                  f"synth export {summary['run_dir']} --out best/", highlight=False)
