"""The rows of the run database as pydantic models: what a candidate, an evaluation and an LLM call are.

Plain data: `population.db.RunDB` stores and loads them (its tables mirror these fields); nothing here
touches SQLite. Unknown fields are refused so that a caller's typo fails loudly instead of being dropped.
"""

from __future__ import annotations

import time
from typing import Literal, Optional

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_serializer

Kind = Literal["program", "code"]  # code = free-form Python from an LLM edit, no program text
# screened = stopped by the short proxy run, never given the full budget
Status = Literal["pending", "scored", "failed", "duplicate", "invalid", "screened"]
STATUSES: tuple[str, ...] = ("pending", "scored", "failed", "duplicate", "invalid", "screened")


class Candidate(BaseModel):
    """One optimizer: its program text (if any), the Submission file it renders to, and where it came from."""

    model_config = ConfigDict(extra="forbid")

    id: Optional[int] = None  # assigned by the database
    generation: int
    kind: Kind = "program"
    genome: Optional[str] = None  # program text (primitives.program); None for code-only candidates
    source: str  # the rendered Submission file: what is scored is what ships
    parents: list[int] = Field(default_factory=list)  # the first parent is the one lineage follows
    operator: str  # "seed", "crossover", "mutate_node", "llm_edit", ...
    operator_params: dict = Field(default_factory=dict)
    model: Optional[str] = None  # the LLM behind an LLM-made edge
    fingerprint: Optional[str] = None  # what it computes on the probe problem, for deduplication
    status: Status = "pending"
    duplicate_of: Optional[int] = None  # the scored twin whose fitness a duplicate shares
    fitness: Optional[float] = None  # higher is better (synth/search/fitness.py); None until scored or if it failed
    created_at: float = Field(default_factory=time.time)
    timings: dict = Field(default_factory=dict)  # seconds spent (probe_s)
    cascade: Optional["GateOutcome"] = None  # the fidelity gate's plan for its run, and what it decided


class GatePlan(BaseModel):
    """Where a child's run is gated (synth/search/cascade.py decides; evaluator/loop.py's Gate applies it)."""

    model_config = ConfigDict(frozen=True)

    steps: int
    audit: bool = False
    threshold: Optional[float] = None  # None: nothing to compare with yet, the run goes on
    full_bar: Optional[float] = None
    # A multi-track run's gates on its later tracks, by track (this plan is the first track's)
    tracks: dict[str, "GateOutcome"] = Field(default_factory=dict)

    @model_serializer(mode="wrap")
    def _one_track_as_before(self, handler):
        """A one-track run's record keeps the shape it always had (no empty `tracks`)."""
        data = handler(self)
        if not self.tracks and isinstance(data, dict):
            data.pop("tracks", None)
        return data


class GateOutcome(GatePlan):
    """A plan with what its gate decided, once the run got there."""

    metric: Optional[float] = None  # the eval metric at the gate step (None: the run never got there)
    promoted: Optional[bool] = None


GatePlan.model_rebuild()
GateOutcome.model_rebuild()
Candidate.model_rebuild()


class Evaluation(BaseModel):
    """One scoring run of one candidate; unique per (candidate_id, track, seed_set, budget).

    `budget` is the training steps the run was given (its SQLite column is `steps`); when the run
    passed is the result's `pass_step`, the benchmark's own `steps` field."""

    model_config = ConfigDict(extra="forbid")

    candidate_id: int
    track: str
    seed_set: str
    budget: int = Field(validation_alias=AliasChoices("budget", "steps"))  # rows carry their column's name
    outcome: str  # EvalResult.outcome: ok | timeout | oom | crash | nonfinite | rejected
    fitness: Optional[float] = None
    result: dict  # EvalResult.model_dump(mode="json")
    created_at: float = Field(default_factory=time.time)


class LLMCall(BaseModel):
    """One request to a language model, kept whole (prompt and reply) so spend and quality can be audited."""

    model_config = ConfigDict(extra="forbid")

    id: Optional[int] = None  # assigned by the database
    provider: str
    model: str
    operator: str
    parent_ids: list[int] = Field(default_factory=list)
    prompt: str
    reply: str
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    outcome: str  # "child" or why not: failed, rejected, timeout, unavailable, error, budget
    child_id: Optional[int] = None
    error: Optional[str] = None
    created_at: float = Field(default_factory=time.time)
