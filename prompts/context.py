"""Everything a prompt may show about the search so far, as plain data the engine fills in.

Kept free of database and evaluator types so prompts can be rendered (and tested) from anything.
"""

from __future__ import annotations

import math
from typing import Optional

from pydantic import BaseModel, Field


class CandidateInfo(BaseModel):
    """One candidate as a prompt shows it: its code, its genome if any, and how it scored."""

    id: str
    fitness: Optional[float] = None  # higher is better (synth.search.fitness)
    source: str = ""  # the rendered Submission file
    program: Optional[str] = None  # program text; None for a code-only candidate
    summary: str = ""  # the benchmark record in a line or two (see `record_summary`)
    curve: list[tuple[int, float]] = Field(default_factory=list)  # (step, eval metric)

    @classmethod
    def from_result(cls, id: object, source: str, program: str | None, fitness: float | None,
                    result=None) -> "CandidateInfo":
        """Build from an `evaluator.record.EvalResult` (or None when not scored yet)."""
        if result is None:
            return cls(id=str(id), fitness=fitness, source=source, program=program)
        return cls(id=str(id), fitness=fitness, source=source, program=program,
                   summary=record_summary(result), curve=[(p.step, p.metric) for p in result.curve])


class PromptContext(BaseModel):
    """The task, the parent(s) and a little search history, for one LLM proposal."""

    track: str
    description: str = ""
    max_steps: int = 400
    eval_every: int = 50
    target: str = ""  # e.g. "eval accuracy >= 0.99 in as few steps as possible"
    parent: CandidateInfo
    other: Optional[CandidateInfo] = None  # the second parent, for crossover
    best: list[CandidateInfo] = Field(default_factory=list)
    diverse: list[CandidateInfo] = Field(default_factory=list)
    failures: list[tuple[str, str]] = Field(default_factory=list)  # (operator, error)
    attempts: list[str] = Field(default_factory=list)  # earlier children on this lineage, one line each
    fitness_formula: str = ""  # how a record becomes the fitness the search maximises
    benchmark_steps: int = 400  # the benchmark's own horizon (max_steps may be shorter in this run)
    vocabulary: Optional[str] = None  # primitive listing; filled from primitives.pset when None
    seeds: Optional[dict[str, str]] = None  # name -> program text; from primitives.seeds when None


def record_summary(result) -> str:
    """The benchmark verdict and the numbers behind it, for an `EvalResult`."""
    if result.outcome != "ok":
        return f"{result.outcome}: {result.error or 'no detail'}"
    if not math.isnan(result.final_eval_mse):
        return (f"status {result.status}; final eval MSE {result.final_eval_mse:.6g} (initial "
                f"{result.initial_eval_mse:.6g}, best {result.best_eval_mse:.6g}); last train loss "
                f"{result.last_train_loss:.6g}")
    passed = f"pass at step {result.pass_step}" if result.status == "pass" else "fail"
    return (f"{passed}; final eval accuracy {result.final_eval_accuracy:.4f} (initial "
            f"{result.initial_eval_accuracy:.4f}, best {result.best_eval_accuracy:.4f}); last train loss "
            f"{result.last_train_loss:.6g}")
