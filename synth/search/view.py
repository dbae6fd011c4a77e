"""What a proposer sees of the run: a read-only view of the population, and nothing of the engine.

The engine builds one `PopulationView` per child. Its candidates are frozen copies, its lists are
tuples, and its database handle answers queries only: a proposer can read every result the child
may see and propose children, never change the population or the engine's state behind its back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

from pydantic import ConfigDict

from population.records import Candidate

if TYPE_CHECKING:
    from synth.search.cascade import GatePlan

QUERIES = frozenset({"get_candidate", "candidates", "top", "lineage", "evaluations", "find_by_text",
                     "find_by_fingerprint", "count", "alive", "seeds_to_tune", "ranked_programs", "tune_trials",
                     "latest", "children_of"})


class FrozenCandidate(Candidate):
    """A candidate as a proposer sees it: assigning a field raises."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def frozen(cand: Candidate) -> FrozenCandidate:
    return FrozenCandidate.model_construct(**dict(cand))


class Queries:
    """The run database's read methods (`QUERIES`), and nothing else."""

    __slots__ = ("_db",)

    def __init__(self, db) -> None:
        object.__setattr__(self, "_db", db)

    def __getattr__(self, name: str):
        if name in QUERIES:
            return getattr(self._db, name)
        raise AttributeError(f"the population view is read-only: it has no {name!r}")

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError("the population view is read-only")


@dataclass(frozen=True)
class PopulationView:
    child: int  # the number of the child being proposed (1-based; a child's invalid tries count once)
    generation: int  # child // population, for the record
    horizon: int  # candidates below this id (and every seed) are what the child may see
    alive: tuple[FrozenCandidate, ...]  # the aging-evolution population: RunDB.alive over the child's window
    db: Queries
    admit: Callable[[Candidate], Candidate]  # the lifecycle's probe + dedup for a new child (writes nothing)
    gate: Optional["GatePlan"] = None  # the cascade's plan for this child
