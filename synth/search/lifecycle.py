"""A candidate's lifecycle: the one place that decides and writes a candidate's status.

    proposed --admit-->  invalid                      the probe rejects it; it never runs
             --admit-->  duplicate | screened | failed  it computes what a finished twin computes
             --admit-->  pending                      it will run (or waits for its pending twin)
    pending  --settle--> duplicate | screened | failed  its twin finished: it takes the twin's outcome
    pending  --finish--> scored | screened | failed   from its own evaluations (the cascade may stop it)

`proposed` is a child not yet admitted (never stored). Any other move raises `IllegalTransition`.
"""

from __future__ import annotations

import time
from typing import Optional

from evaluator.record import EvalResult
from population.db import RunDB
from population.records import Candidate, Evaluation, GateOutcome
from synth.search.fitness import combined, fitness

PROPOSED = "proposed"
TRANSITIONS: dict[str, frozenset[str]] = {
    PROPOSED: frozenset({"invalid", "pending", "duplicate", "screened", "failed"}),
    "pending": frozenset({"pending", "duplicate", "scored", "screened", "failed"}),
}


class IllegalTransition(RuntimeError):
    """A status change the lifecycle does not allow (a bug, never a user error)."""


def check(old: str, new: str) -> None:
    if new not in TRANSITIONS.get(old, frozenset()):
        raise IllegalTransition(f"a candidate cannot go from {old!r} to {new!r}")


def outcome_of_twin(twin: Candidate) -> tuple[str, Optional[float]]:
    """(status, fitness) of a child that computes what `twin` computes."""
    if twin.status in ("scored", "duplicate"):
        return "duplicate", twin.fitness
    return twin.status, None  # screened or failed, like its twin


def track_outcome(evaluations: dict[str, Evaluation], seed_sets: list[str], full_steps: int) -> tuple[str, Optional[float]]:
    """(status, fitness) on one track: failed, screened (its run stopped at the gate) or scored (the mean
    over the seed sets; any failure fails it)."""
    first = evaluations.get("benchmark")
    fits = [evaluations[s].fitness for s in seed_sets if s in evaluations]
    if first is None or first.outcome != "ok":
        return "failed", None
    if first.budget != full_steps:
        return "screened", None
    if len(fits) == len(seed_sets) and all(f is not None for f in fits):
        return "scored", sum(fits) / len(fits)
    return "failed", None


class Lifecycle:
    def __init__(self, db: RunDB, probe) -> None:
        self.db = db
        self.probe = probe  # source -> ProbeResult (the backend's cheap check)

    def admit(self, draft: Candidate) -> Candidate:
        """The probe: reject a dead child cheaply, and spot one that computes what an earlier one does.

        A twin is the earliest candidate with the same fingerprint, finished or not; the child takes
        its outcome (score, screening or failure) once the twin has one, and never runs itself.
        Writes nothing: the engine commits the admitted child with the RNG state that made it.
        """
        started = time.perf_counter()
        probe = self.probe(draft.source)
        draft.timings["probe_s"] = time.perf_counter() - started
        if not probe.ok:
            return self._moved(draft, "invalid", operator_params={**draft.operator_params, "error": probe.error})
        draft.fingerprint = probe.fingerprint
        twin = self.db.find_by_fingerprint(probe.fingerprint, status=None)
        if twin is None:
            return self._moved(draft, "pending")
        draft.duplicate_of = twin.id
        if twin.status == "pending":
            return self._moved(draft, "pending")
        status, fit = outcome_of_twin(twin)
        return self._moved(draft, status, fitness=fit)

    def rejected(self, draft: Candidate) -> Candidate:
        """A child that failed before it had a source to probe (an LLM reply that did not check out)."""
        return self._moved(draft, "invalid")

    @staticmethod
    def _moved(draft: Candidate, status: str, **fields) -> Candidate:
        check(PROPOSED, status)
        for name, value in {"status": status, **fields}.items():
            setattr(draft, name, value)
        return draft

    def settle(self, cand: Candidate) -> bool:
        """A pending duplicate whose twin finished takes the twin's outcome; True if it did."""
        twin = self.db.get_candidate(cand.duplicate_of)
        if twin.status == "pending":
            return False
        status, fit = outcome_of_twin(twin)
        self._write(cand, status, fitness=fit)
        return True

    def record(self, cand_id: int, result: EvalResult) -> None:
        """Stores one evaluation; the candidate stays pending until `finish` (nothing left to run)."""
        self.db.add_evaluation(
            Evaluation(candidate_id=cand_id, track=result.track, seed_set=result.seed_set,
                       budget=result.max_steps, outcome=result.outcome, fitness=fitness(result),
                       result=result.model_dump(mode="json"), created_at=time.time()),
            candidate_status="pending", candidate_fitness=None)

    def finish(self, cand: Candidate, evaluations: dict[str, dict[str, Evaluation]], seed_sets: list[str],
               full_steps: int, gate: Optional[GateOutcome]) -> None:
        """Status and fitness from the evaluations, by track (in scoring order) then seed set: failed or
        screened (stopped by the gate) on the first track that was, else scored. One track's fitness is
        the mean over its seed sets; several tracks' are combined (synth/search/fitness.py `combined`)."""
        fits: dict[str, float] = {}
        status = "scored"
        for track, by_seed in evaluations.items():
            status, fits[track] = track_outcome(by_seed, seed_sets, full_steps)
            if status != "scored":
                break
        if status != "scored":
            fit = None
        else:
            fit = fits.popitem()[1] if len(fits) == 1 else combined(fits)
        self._write(cand, status, fitness=fit, **({"cascade": gate} if gate is not None else {}))

    def _write(self, cand: Candidate, status: str, **fields) -> None:
        check(cand.status, status)
        self.db.update_candidate(cand.id, status=status, **fields)
