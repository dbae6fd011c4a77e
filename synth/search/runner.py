"""`synth evolve` end to end: workers, the optional LLM, the live view, the closing summary."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn
from rich.text import Text

from evaluator.sandbox import Limits
from population.db import RunDB
from synth.config import ExecutionConfig, RunConfig, TrustConfig
from synth.search.engine import Evolution
from synth.search.progress import Progress

LLM_OFF = ("LLM edits are off (genetic operators only). Turn them on with --llm openai:MODEL "
           "(OPENAI_API_KEY), --llm anthropic:MODEL (ANTHROPIC_API_KEY) or --llm "
           "openai:MODEL@http://host:port/v1 for any OpenAI-compatible server, plus --llm-rate 0.3.")


def make_pool(run: ExecutionConfig):
    limits = Limits(timeout_s=run.timeout_s, memory_mb=run.memory_mb)
    if run.backend == "ray":
        from evaluator.ray_backend import RayPool

        return RayPool(workers=run.workers, limits=limits, devices=run.devices, address=run.ray_address)
    from evaluator.pool import LocalPool

    return LocalPool(workers=run.workers, limits=limits, devices=run.devices)


def make_llm(cfg: RunConfig, db: RunDB, console: Console):
    """The LLM operators, or None with one clear line saying why they are off."""
    if not cfg.llm.models or cfg.llm.rate == 0:
        console.print(f"[yellow]{LLM_OFF}[/]" if not cfg.llm.models else
                      "[yellow]LLM configured but --llm-rate is 0: LLM edits are off.[/]", highlight=False)
        return None
    from synth.llm.proposer import LLMVariation

    return LLMVariation(cfg, db, notice=lambda line: console.print(f"[yellow]{escape(line)}[/]", highlight=False))


class SetupError(ValueError):
    """The run asks for something this machine does not have (Ray, a CUDA device); one line for the user."""


def preflight(cfg: RunConfig) -> None:
    """Refuses, before anything is stored, a backend or device this machine cannot provide."""
    devices = cfg.execution.devices
    if cfg.execution.backend == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise SetupError("--backend ray needs Ray, which is not installed: pip install -e \".[ray]\" "
                             "(or leave --backend out for the local backend)") from None
    cuda = [d for d in devices.split(",") if d.startswith("cuda:")]
    if cuda:
        import torch

        if not torch.cuda.is_available():
            raise SetupError(f"--devices {devices}: this torch ({torch.__version__}) sees no CUDA device; "
                             "use --devices cpu, or install a CUDA build of torch")
        count = torch.cuda.device_count()
        missing = [d for d in cuda if int(d[5:]) >= count]
        if missing:
            raise SetupError(f"--devices {devices}: {missing[0]} does not exist (this machine has "
                             f"{count} CUDA device{'s' if count != 1 else ''}: cuda:0..cuda:{count - 1})")


def warm_tracks(pool, cfg: RunConfig) -> None:
    for track in cfg.tracks:
        pool.warm(track, steps=cfg.steps)


def describe_run(cfg: RunConfig, workers: int) -> str:
    """Everything that defines the run, so a resumed run's settings (a quick `--steps 100`) show."""
    search, gate, run = cfg.search, cfg.cascade, cfg.execution
    cascade = (f"cascade at step {gate.proxy_steps} (top {1 - gate.proxy_quantile:.0%} go on)"
               if gate.proxy_steps else "cascade off")
    where = f"{workers} worker{'s' if workers != 1 else ''} on {run.devices}" + (", ray" if run.backend == "ray" else "")
    return (f"track {','.join(cfg.tracks)}, {cfg.steps} steps, {search.generations} "
            f"generation{'s' if search.generations != 1 else ''} of {search.population}, "
            f"seed {search.seed}, {where}, {cascade}")


class LiveView:
    """The live view: a phase label with its own bar and ETA, true running/queued counts, verdicts.

    Phases: warming workers -> seeds -> search -> finalists. The ETA of a phase is its pace in this
    process (units done since the phase began here) times what is left; a resumed run does not
    count the work done before it."""

    def __init__(self, console: Console, workers: int) -> None:
        self.workers = workers
        self.bar = Bar(TextColumn("{task.description:<15}"), BarColumn(bar_width=None), MofNCompleteColumn(),
                       TextColumn("{task.fields[unit]}"), TimeElapsedColumn(), TextColumn("{task.fields[eta]}"),
                       console=console, expand=True)
        self.task = self.bar.add_task("warming workers", total=None, unit="", eta="")
        self.phase: str | None = None
        self.phase_started, self.done_at_phase_start = time.time(), 0

    def phase_counts(self, progress: Progress) -> tuple[int, int | None, str]:
        """(done, total, unit) of the current phase."""
        if progress.phase == "seeds":
            return progress.seeds_done, progress.seeds_total or None, "seeds"
        if progress.phase == "search":
            children_pending = progress.pending if progress.children else 0
            return max(progress.children - children_pending, 0), progress.children_total, "children"
        if progress.phase == "finalists":
            return progress.finalists_done, progress.finalists_total, "finalists"
        return 0, self.workers, "workers"

    def eta(self, done: int, total: int | None) -> str:
        rate_done = done - self.done_at_phase_start
        if total is None or rate_done <= 0 or done >= total:
            return "ETA -" if total is None or done < total else ""
        left = (time.time() - self.phase_started) / rate_done * (total - done)
        return "ETA " + time.strftime("%H:%M:%S" if left >= 3600 else "%M:%S", time.gmtime(left))

    def render(self, progress: Progress) -> Group:
        done, total, unit = self.phase_counts(progress)
        if progress.phase != self.phase:
            self.phase, self.phase_started, self.done_at_phase_start = progress.phase, time.time(), done
        self.bar.update(self.task, description=progress.phase, completed=done, total=total, unit=unit,
                        eta=self.eta(done, total))
        lines = [
            f"generation {progress.generation} of {progress.generations} · running {progress.running} · "
            f"queued {progress.queued} · evaluations {progress.evaluations} ({progress.evals_per_minute:.1f}/min)",
            f"dedup hits {progress.dedup_hits} · invalid (probe) {progress.invalid} · "
            f"stopped by the cascade {progress.screened} · failures {progress.failures}",
            f"best {'#' + str(progress.best_id) + '  ' + progress.best_summary if progress.best_id is not None else 'none yet'}",
        ]
        stats = Text("\n".join(lines))
        program = Panel(progress.best_text or "-", title="best program", border_style="green")
        return Group(self.bar, stats, program)


def run_evolution(db: RunDB, cfg: RunConfig, run_dir: Path, resumed: bool, console: Console,
                  live: bool = True, time_budget_s: float | None = None, summary: bool = True) -> dict:
    """`live`: the live view; `summary`: the closing summary (`--quiet` keeps it, `--json` prints its own)."""
    started = time.time()
    evaluations_before = db.count_evaluations()
    try:
        return _run(db, cfg, run_dir, resumed, console, live, time_budget_s, summary, started, evaluations_before)
    finally:
        record_session(db, time.time() - started)


def record_session(db: RunDB, wall_s: float) -> None:
    """Adds this command's wall time to the run's, so the report's header is the time the commands took."""
    before = db.get_state("sessions") or {"count": 0, "wall_s": 0.0}
    db.set_state("sessions", {"count": before["count"] + 1, "wall_s": before["wall_s"] + wall_s})


def _run(db, cfg, run_dir, resumed, console, live, time_budget_s, summary, started, evaluations_before) -> dict:
    llm = make_llm(cfg, db, console)
    deadline = started + time_budget_s if time_budget_s is not None else None
    with make_pool(cfg.execution) as pool:
        word = "resuming" if resumed else "starting"
        console.print(f"{word} run [bold]{escape(str(run_dir))}[/]: {describe_run(cfg, pool.size)}", highlight=False)
        evolution = Evolution(db, cfg, pool, llm=llm, deadline=deadline)
        if live:
            view = LiveView(console, pool.size)
            with Live(console=console, refresh_per_second=4, transient=False) as screen:
                warming = Progress(phase="warming workers", generations=cfg.search.generations,
                                   children_total=evolution.children_total)
                screen.update(view.render(warming))
                warm_tracks(pool, cfg)
                announce_isolation(console, pool)
                evolution.on_progress = lambda p: screen.update(view.render(p))
                progress = evolution.run()
                screen.update(view.render(progress))
                stopped_early(console, progress)
                assess_finalists(db, cfg.trust, pool, console, progress,
                                 on_progress=lambda p: screen.update(view.render(p)))
            if not console.is_terminal:
                console.line()  # piped: the last frame ends without a newline
        else:
            warm_tracks(pool, cfg)
            announce_isolation(console, pool)
            progress = evolution.run()
            stopped_early(console, progress)
            assess_finalists(db, cfg.trust, pool, console, progress)
    result = run_summary(db, progress, time.time() - started, run_dir, db.count_evaluations() - evaluations_before)
    if summary:
        print_summary(console, result)
    return result


def announce_isolation(console: Console, pool) -> None:
    """Once per run: what confines candidates here (evaluator/jail.py), loudly when it is less than the jail."""
    isolation = getattr(pool, "isolation", None)
    if isolation:
        style = "yellow" if isolation.startswith("REDUCED") or "NO SECCOMP" in isolation else "dim"
        console.print(f"[{style}]candidates run in: {escape(isolation)}[/]", highlight=False)


def stopped_early(console: Console, progress: Progress) -> None:
    if progress.stopped_by:
        console.print(f"[yellow]stopped by the {progress.stopped_by} after {progress.children} of "
                      f"{progress.children_total} children; the same command resumes.[/]", highlight=False)


def assess_finalists(db: RunDB, trust: TrustConfig, pool, console: Console, progress: Progress,
                     on_progress=None) -> None:
    """The top candidates, re-scored on held-out seeds and checked for compliance (synth/winners/trust.py).
    With `on_progress` (the live view), each finalist's verdict is printed as it comes."""
    from synth.winners.trust import assess_and_record, passed

    finalists = [c for c in db.top(trust.finalists * 4 + 10) if c.status == "scored"][:trust.finalists]
    todo = [c for c in finalists if db.get_state(f"compliance/{c.id}") is None]
    progress.phase, progress.finalists_total, progress.finalists_done = "finalists", len(todo), 0
    for cand in todo:
        if on_progress is not None:
            on_progress(progress)
        report = assess_and_record(db, pool, cand, k=trust.heldout)
        progress.finalists_done += 1
        if on_progress is not None:
            word = "[green]compliant[/]" if passed(report) else "[red]flagged[/]"
            held = report["heldout"]
            console.print(f"finalist #{cand.id}: {word}; held-out mean {held['mean']:.4g} ± {held['std']:.2g} "
                          f"over {held['k']} seed sets; " + "; ".join(
                              f"{k}: {v['verdict']}" for k, v in report.items()), highlight=False)
    if on_progress is not None:
        on_progress(progress)


def run_summary(db: RunDB, progress: Progress, wall_s: float, run_dir: Path, evaluations: int) -> dict:
    """`evaluations` and `wall_s` are this process's (a resumed run's earlier work is in `evaluations_total`)."""
    from synth.reporting.queries import leaderboard

    board = leaderboard(db, 5)
    return {
        "run_dir": str(run_dir),
        "generation": progress.generation,
        "children": progress.children,
        "stopped_by": progress.stopped_by,
        "evaluations": evaluations,
        "evaluations_total": db.count_evaluations(),
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
    from synth.reporting.tables import render_leaderboard

    console.rule("summary")
    console.print(f"this session: {summary['evaluations']} evaluations in {summary['wall_s']} s "
                  f"(run total {summary['evaluations_total']}); run: {summary['dedup_hits']} dedup hits, "
                  f"{summary['invalid']} invalid children caught by the probe, {summary['failures']} failed runs",
                  highlight=False)
    render_leaderboard(console, {"top": [summary["best"]] if summary["best"] else [], "operators": summary["operators"],
                                 "llm": summary["llm"], "track": None, "cascade": summary["cascade"]})
    console.print(f"next: synth show {summary['run_dir']} | synth lineage {summary['run_dir']} --diff | "
                  f"synth export {summary['run_dir']} --out best/", highlight=False)
