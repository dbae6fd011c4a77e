"""The one interface behind which children are made, and the one through which they are scored.

A `Proposer` (synth/genetic/proposer.py, synth/llm/proposer.py) gets a read-only view of the population
and the engine's RNG and gives back a `Proposal`: admitted children to commit now, or none yet (an
LLM call in flight, committed when it returns). A `Backend` (evaluator/pool.py's LocalPool,
evaluator/ray_backend.py's RayPool) probes a child's source and runs its evaluations.
"""

from __future__ import annotations

import random
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Optional, Protocol

from evaluator.pool import EvalJob
from population.records import Candidate
from synth.search.view import PopulationView


@dataclass
class Proposal:
    candidates: list[Candidate] = field(default_factory=list)  # admitted, in the order they are committed
    in_flight: bool = False  # nothing to commit yet: the proposer delivers the child later


class Proposer(Protocol):
    def propose(self, view: PopulationView, rng: random.Random) -> Optional[Proposal]:
        """Children for `view.child`; None when this proposer cannot make one now (another will)."""


class Backend(Protocol):
    @property
    def size(self) -> int:
        """How many evaluations run at once."""

    def probe(self, source: str):
        """A cheap check of a child (evaluator/probe.py ProbeResult: ok, error, fingerprint)."""

    def submit_eval(self, job: EvalJob) -> Future:
        """Runs one evaluation; the future's result is an EvalResult."""
