"""Does a winner carry over? The elite scored on every track, whatever track it was evolved on.

A search on one track rewards what works there; the benchmark's top entries show that a winner on
random_teacher can stay at chance on the recall tracks, and the reverse. The transfer table puts
the elite's verdict on all three tracks, on the benchmark seeds and on the held-out seed sets the
run's finalists use, next to its search score.

Every run goes through the same sandboxed pool as the search, on the run's own device and limits
(`scoring_limits`). Each finished verdict is kept in the run database (state key
`transfer/<id>/<track>/<seed set>/<steps>/<device>`) as soon as it arrives, so a second export, or
one resumed after Ctrl-C, pays only for what is missing. Verdicts the run already holds (the search
score, the finalists' held-out runs) are read, never run again.
"""

from __future__ import annotations

import statistics
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Callable, Iterable

from evaluator.pool import EvalJob, LocalPool, parse_devices
from evaluator.record import EvalResult
from evaluator.sandbox import Limits
from evaluator.tracks import TRACK_NAMES, get_track
from population.db import RunDB
from synth.config import CHEAP_FIRST  # random_teacher takes minutes per run on CPU
from synth.search.fitness import describe

SEED_KINDS = ("benchmark", "heldout")

Progress = Callable[[str, int, int], None]  # (what just finished, done, total)


def parse_tracks(text: str) -> list[str]:
    """`--transfer`: a comma list of tracks, `all`, or `none`; cheap tracks first."""
    text = text.strip()
    if text == "none":
        return []
    names = list(TRACK_NAMES) if text == "all" else [t.strip() for t in text.split(",") if t.strip()]
    for name in names:
        get_track(name)  # ValueError names the choices
    if not names:
        raise ValueError("--transfer is empty: use 'all', 'none' or a list like 'single_ar,mqar'")
    return [t for t in CHEAP_FIRST if t in names]


def parse_seed_kinds(text: str) -> list[str]:
    """`--transfer-seeds`: `benchmark`, `heldout` or both, comma separated."""
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    bad = [k for k in kinds if k not in SEED_KINDS]
    if bad or not kinds:
        raise ValueError(f"--transfer-seeds {text!r}: use 'benchmark', 'heldout' or 'benchmark,heldout'")
    return [k for k in SEED_KINDS if k in kinds]


def run_device(config: dict) -> str:
    """The device a run scored on: the first of its --devices (all of a run's devices are one kind)."""
    return parse_devices(config.get("devices") or "cpu", 1)[0]


def scoring_limits(config: dict, track: str) -> Limits:
    """The run's own limits: its --timeout applies to its own track; another track gets that track's
    default (a 60 s recall limit would stop every random_teacher run)."""
    timeout = config.get("timeout_s") if track in (config.get("tracks") or [config["track"]]) else None
    return Limits(timeout_s=timeout, memory_mb=config.get("memory_mb") or Limits().memory_mb)


def transfer_steps(config: dict, track: str, override: int | None) -> int:
    """How long each track trains: --transfer-steps if given, else the run's --steps (a short
    experiment stays short everywhere), else the track's benchmark budget."""
    return override or config.get("steps") or get_track(track).max_steps


@dataclass(frozen=True)
class Cell:
    track: str
    seed_set: str
    steps: int

    def state_key(self, cand_id: int, device: str) -> str:
        return f"transfer/{cand_id}/{self.track}/{self.seed_set}/{self.steps}/{device}"


def plan(config: dict, tracks: Iterable[str], kinds: Iterable[str], steps: int | None) -> list[Cell]:
    k = config.get("heldout") or 3
    cells = []
    for track in tracks:
        n = transfer_steps(config, track, steps)
        names = (["benchmark"] if "benchmark" in kinds else []) + \
                ([f"heldout-{i}" for i in range(1, k + 1)] if "heldout" in kinds else [])
        cells += [Cell(track, name, n) for name in names]
    return cells


def known_result(db: RunDB, cand_id: int, cell: Cell, device: str) -> EvalResult | None:
    """A verdict the run already holds: stored by an earlier export, or scored by the run itself on its
    own track (the search score, a finalist's held-out run)."""
    stored = db.get_state(cell.state_key(cand_id, device))
    if stored is not None:
        return EvalResult.model_validate(stored)
    config = db.config()
    if cell.track in (config.get("tracks") or [config["track"]]) and device == run_device(config):
        for ev in db.evaluations(candidate_id=cand_id, track=cell.track, seed_set=cell.seed_set):
            result = EvalResult.model_validate(ev.result)
            if ev.budget == cell.steps and not result.gated_out:
                return result
    return None


def score_transfer(db: RunDB, cand_id: int, source: str, tracks: Iterable[str], kinds: Iterable[str],
                   steps: int | None = None, progress: Progress | None = None,
                   pools: dict | None = None) -> list[dict]:
    """Scores what is missing, stores each verdict as it arrives, and returns one table row per track."""
    config = db.config()
    device = run_device(config)
    tracks, kinds = list(tracks), list(kinds)
    cells = plan(config, tracks, kinds, steps)
    results = {cell: known_result(db, cand_id, cell, device) for cell in cells}
    missing = [cell for cell in cells if results[cell] is None]
    done, total = len(cells) - len(missing), len(cells)
    if progress:
        progress("transfer: already known", done, total)
    with ExitStack() as stack:
        pools = dict(pools or {})
        by_limits: dict[Limits, list[Cell]] = {}
        for cell in missing:
            by_limits.setdefault(scoring_limits(config, cell.track), []).append(cell)
        for limits, group in by_limits.items():
            if limits not in pools:
                workers = min(len(group), len(parse_devices(config.get("devices") or "cpu", config.get("workers"))))
                pools[limits] = stack.enter_context(LocalPool(workers=workers, limits=limits,
                                                              devices=config.get("devices") or "cpu"))
            jobs = [(cell, EvalJob(source, cell.track, steps=cell.steps, seed_set=cell.seed_set,
                                   submission=f"synth-{cand_id}")) for cell in group]
            for cell, result in pools[limits].evaluate_many(jobs):
                db.set_state(cell.state_key(cand_id, device), result.model_dump(mode="json"))
                results[cell] = result
                done += 1
                if progress:
                    progress(f"transfer: {cell.track} {cell.seed_set} {describe(result)}", done, total)
    return [table_row(track, [c for c in cells if c.track == track], results, device) for track in tracks]


def table_row(track: str, cells: list[Cell], results: dict, device: str) -> dict:
    spec = get_track(track)
    steps = cells[0].steps if cells else spec.max_steps
    row = {"track": track, "steps": steps, "benchmark_budget": steps == spec.max_steps, "device": device,
           "metric": "final_eval_mse" if spec.task == "regression" else "final_eval_accuracy",
           "benchmark": None, "heldout": None}
    bench = next((results[c] for c in cells if c.seed_set == "benchmark"), None)
    if bench is not None:
        row["benchmark"] = {"verdict": describe(bench), "outcome": bench.outcome, "status": bench.status,
                            "steps": bench.steps, "final_metric": bench.final_metric() if bench.scored else None}
    held = [results[c] for c in cells if c.seed_set.startswith("heldout-")]
    if held:
        values = [r.final_metric() for r in held if r.scored]
        row["heldout"] = {"k": len(held), "scored": len(values), "passed": sum(r.status == "pass" for r in held),
                          "mean": statistics.fmean(values) if values else None,
                          "std": statistics.stdev(values) if len(values) > 1 else (0.0 if values else None),
                          "values": [r.final_metric() if r.scored else None for r in held],
                          "verdicts": [describe(r) for r in held]}
    return row


def transfer_markdown(rows: list[dict], evolved_on: str) -> list[str]:
    """The transfer table for lineage.md (`evolved_on`: the run's track, or its tracks comma separated)."""
    if not rows:
        return []
    lines = ["", "## Transfer: every track", "",
             f"Evolved on {evolved_on}; scored on the run's device, benchmark seeds and held-out seed sets.", "",
             "| track | steps | benchmark seeds | held-out mean ± std | held-out verdicts |", "|---|---|---|---|---|"]
    for row in rows:
        name = row["track"] + (" (evolved on)" if row["track"] in evolved_on.split(",") else "")
        steps = f"{row['steps']}" + ("" if row["benchmark_budget"] else " (not the benchmark's budget)")
        bench = row["benchmark"]["verdict"] if row["benchmark"] else "-"
        held = row["heldout"]
        mean = "-" if not held or held["mean"] is None else f"{held['mean']:.4g} ± {held['std']:.2g} (k={held['k']})"
        verdicts = ", ".join(held["verdicts"]) if held else "-"
        lines.append(f"| {name} | {steps} | {bench} | {mean} | {verdicts} |")
    return lines
