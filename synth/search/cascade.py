"""The fidelity cascade, engine side: where a child's run is gated, and what the gate decided.

A child's run is told (`GatePlan`) to evaluate at `proxy_steps` and stop there if its eval metric
is below `threshold`, the population's `proxy_quantile` of the metrics at that step; every
`audit_every`-th child runs in full whatever the gate says (`audit`), and `full_bar`, the same
quantile of the population's full scores, is what the audit judges the gate by: an audited child
that reaches it is one the gate should have let through. The worker applies the plan
(evaluator/loop.py `Gate`); after the run, `outcome` records the metric and whether it passed.

Stored with the candidate, in its own column (`Candidate.cascade`; schema v3 moved older runs'
records there from `timings["proxy"]`).

A multi-track run (`TrackCascades`) gates every track at the same step, each against the population's
metrics on that track; the first track's gate is the stored plan, the later ones sit in its `tracks`.
A child stopped on one track never runs the next.
"""

from __future__ import annotations

from typing import Callable, Optional

from evaluator.loop import Gate
from population.records import Candidate, GateOutcome, GatePlan
from synth.config import CascadeConfig

__all__ = ["Cascade", "GateOutcome", "GatePlan", "TrackCascades", "gate_on", "stored", "with_plan"]


def stored(cand: Candidate) -> Optional[GateOutcome]:
    """The plan (and outcome, once finished) stored with a candidate; None if its run was not gated."""
    return cand.cascade


def gate_on(cand: Candidate, track: str, first: str) -> Optional[GateOutcome]:
    """A candidate's gate on `track` of a run whose first track is `first`."""
    gate = stored(cand)
    return gate if gate is None or track == first else gate.tracks.get(track)


def with_plan(cand: Candidate, plan: Optional[GatePlan]) -> Candidate:
    """A child that will run is told where its gate is."""
    if plan is not None and cand.status == "pending":
        cand.cascade = GateOutcome(**plan.model_dump())
    return cand


class Cascade:
    def __init__(self, config: CascadeConfig, regression: bool) -> None:
        self.config = config
        self.regression = regression

    @property
    def on(self) -> bool:
        return bool(self.config.proxy_steps)

    def audit_due(self, child: int) -> bool:
        return child % self.config.audit_every == 0

    def plan(self, population: list[Candidate], lookup: Callable[[int], Candidate], audit: bool,
             gate_of: Callable[[Candidate], Optional[GateOutcome]] = stored) -> Optional[GatePlan]:
        """The gate for the next child, from the population (a duplicate's metric is its twin's: `lookup`)."""
        if not self.on:
            return None
        metrics, fits = [], []
        for member in population:
            gate = gate_of(lookup(member.duplicate_of) if member.duplicate_of else member)
            if gate is not None and gate.metric is not None:
                metrics.append(-gate.metric if self.regression else gate.metric)  # higher is better from here on
            if member.fitness is not None:
                fits.append(member.fitness)
        return GatePlan(steps=self.config.proxy_steps, audit=audit,
                        threshold=self._quantile(metrics, sign=-1 if self.regression else 1),
                        full_bar=self._quantile(fits, sign=1))

    def seed_plan(self) -> Optional[GatePlan]:
        """Seeds have no population to compare with: their gate never stops them."""
        return GatePlan(steps=self.config.proxy_steps) if self.on else None

    @staticmethod
    def job_gate(plan: Optional[GateOutcome]) -> tuple[Optional[int], Optional[float]]:
        """(gate step, threshold) for the worker; an audited child is measured at the gate, never stopped."""
        if plan is None:
            return None, None
        return plan.steps, None if plan.audit else plan.threshold

    def outcome(self, plan: Optional[GateOutcome], metric: Optional[float]) -> Optional[GateOutcome]:
        """What the gate decided for a finished run (the worker's `Gate`, so both sides agree); None when
        the run was not gated or never reached its gate."""
        if plan is None or metric is None:
            return None
        promoted = Gate(plan.steps, plan.threshold).admits(metric, self.regression)
        return GateOutcome(**{**plan.model_dump(), "metric": metric, "promoted": promoted})

    def _quantile(self, values: list[float], sign: int) -> Optional[float]:
        """The `proxy_quantile` of `values` (higher is better), given back in the metric's own sign."""
        if not values:
            return None
        ordered = sorted(values)
        return sign * ordered[min(len(ordered) - 1, int(self.config.proxy_quantile * len(ordered)))]


class TrackCascades:
    """The cascade of a run on several tracks (in scoring order): one `Cascade` per track, one stored plan."""

    def __init__(self, config: CascadeConfig, regression: dict[str, bool]) -> None:
        self.tracks = list(regression)
        self.by_track = {track: Cascade(config, flag) for track, flag in regression.items()}
        self.first = self.by_track[self.tracks[0]]
        self.on, self.audit_due, self.job_gate = self.first.on, self.first.audit_due, Cascade.job_gate

    def plan(self, population: list[Candidate], lookup: Callable[[int], Candidate], audit: bool) -> Optional[GatePlan]:
        plans = {track: self.by_track[track].plan(population, lookup, audit,
                                                  gate_of=lambda c, t=track: gate_on(c, t, self.tracks[0]))
                 for track in self.tracks}
        return self._joined(plans)

    def seed_plan(self) -> Optional[GatePlan]:
        return self._joined({track: self.by_track[track].seed_plan() for track in self.tracks})

    def gate(self, plan: Optional[GateOutcome], track: str) -> Optional[GateOutcome]:
        return plan if plan is None or track == self.tracks[0] else plan.tracks.get(track)

    def outcome(self, plan: Optional[GateOutcome], metrics: dict[str, Optional[float]]) -> Optional[GateOutcome]:
        """What each track's gate decided (`metrics`: the gate metric of each track run so far); the plan
        as it was for a track that never reached its gate."""
        if plan is None:
            return None
        decided = {track: self.by_track[track].outcome(self.gate(plan, track), metrics.get(track))
                   or self.gate(plan, track) for track in self.tracks}
        first = decided.pop(self.tracks[0])
        return first.model_copy(update={"tracks": decided}) if decided else first

    def _joined(self, plans: dict[str, Optional[GatePlan]]) -> Optional[GatePlan]:
        first = plans.pop(self.tracks[0])
        if first is None or not plans:
            return first
        return first.model_copy(update={"tracks": {t: GateOutcome(**p.model_dump()) for t, p in plans.items()}})
