"""What the live view shows of a run, read from the run database (no presentation code here)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional

from evaluator.record import EvalResult
from population.db import RunDB
from synth.search.fitness import describe


@dataclass
class Progress:
    generation: int = 0
    generations: int = 0
    children: int = 0
    children_total: int = 0
    evaluations: int = 0
    pending: int = 0  # candidates not finished yet
    running: int = 0  # evaluations on a worker now
    queued: int = 0  # evaluations submitted, waiting for a free worker
    phase: str = "seeds"  # "seeds" until every seed is scored, then "search" (the runner adds the others)
    seeds_total: int = 0
    seeds_done: int = 0
    finalists_total: int = 0  # set by the runner in the "finalists" phase
    finalists_done: int = 0
    dedup_hits: int = 0
    invalid: int = 0
    screened: int = 0
    failures: int = 0
    best_id: Optional[int] = None
    best_fitness: Optional[float] = None
    best_text: str = ""
    best_summary: str = ""
    stopped_by: Optional[str] = None  # "time budget" when --time-budget ended the run early
    started: float = field(default_factory=time.time)
    evaluations_at_start: Optional[int] = None  # a resumed run's earlier evaluations are not this process's

    @property
    def evals_per_minute(self) -> float:
        elapsed = time.time() - self.started
        done = self.evaluations - (self.evaluations_at_start or 0)
        return 60.0 * done / elapsed if elapsed > 0 else 0.0


def refresh(p: Progress, db: RunDB, children: int, population: int, full_steps: int, running: list) -> None:
    """Counts from the database; `running` are the evaluation futures in flight."""
    p.evaluations = db.count_evaluations()
    if p.evaluations_at_start is None:
        p.evaluations_at_start = p.evaluations
    p.children = children
    p.generation = generation_of(children, population)
    p.running = sum(1 for future in running if future.running())
    p.queued = len(running) - p.running
    pending = db.pending()
    p.pending = len(pending)
    seeds_waiting = sum(1 for c in pending if c.generation == 0)
    if children == 0:
        p.seeds_total = p.seeds_total or db.count()  # before the first child, every candidate is a seed
        p.seeds_done = p.seeds_total - seeds_waiting
    p.phase = "seeds" if children == 0 and seeds_waiting else "search"
    p.failures = db.count("failed")
    p.invalid = db.count("invalid")
    p.dedup_hits = db.count("duplicate")
    p.screened = db.count("screened")
    top = db.top(1)
    if top and top[0].fitness is not None and top[0].id != p.best_id:
        best = top[0]
        p.best_id, p.best_fitness = best.id, best.fitness
        p.best_text = best.genome or "(free-form code)"
        full = [e for e in db.evaluations(candidate_id=best.duplicate_of or best.id, seed_set="benchmark")
                if e.budget == full_steps]
        verdicts = {e.track: describe(EvalResult.model_validate(e.result)) for e in full}  # one per track
        p.best_summary = (" · ".join(f"{t} {v}" for t, v in verdicts.items()) if len(verdicts) > 1
                          else next(iter(verdicts.values()), ""))


def generation_of(child: int, population: int) -> int:
    """Child 1..population is generation 1, and so on; 0 before the first child."""
    return (child - 1) // population + 1 if child else 0
