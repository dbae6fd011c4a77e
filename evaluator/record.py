"""The result of scoring one candidate: the benchmark's own record plus what synth needs."""

from __future__ import annotations

import math
from typing import Literal, Optional

from pydantic import BaseModel, Field

Outcome = Literal["ok", "timeout", "oom", "crash", "nonfinite", "rejected"]
NAN = float("nan")


class EvalPoint(BaseModel):
    step: int
    metric: float  # eval MSE (regression) or eval accuracy (recall)
    loss: float  # eval loss: MSE or cross-entropy; the finer signal behind a coarse accuracy


class EvalResult(BaseModel):
    # --- the benchmark's record, field for field (NaN where a metric does not apply)
    submission: str = ""
    track: str
    status: Literal["pass", "fail"] = "fail"
    steps: int = 0
    max_steps: int
    eval_every: int
    train_samples: int
    eval_samples: int
    batch_size: int
    initial_eval_mse: float = NAN
    final_eval_mse: float = NAN
    best_eval_mse: float = NAN
    initial_eval_accuracy: float = NAN
    final_eval_accuracy: float = NAN
    best_eval_accuracy: float = NAN
    target_mse: float = NAN
    target_accuracy: float = NAN
    last_train_loss: float = NAN
    training_wall_time_s: float = NAN
    torch: str = ""
    device: str = "cpu"
    platform: str = ""
    date_utc: str = ""
    # --- synth's own
    outcome: Outcome = "ok"
    error: Optional[str] = None
    seed_set: str = "benchmark"
    curve: list[EvalPoint] = Field(default_factory=list)
    setup_s: float = NAN  # candidate process start to first step (fork, import, model build)
    total_s: float = NAN  # the candidate's whole life as the worker saw it
    data_build_s: float = NAN  # paid once per worker, reported for the record
    # Kept so records of older runs still load. The optimizer now steps in a process of its own, with its
    # own copy of the global RNG, so it can no longer reach the harness's: nothing sets this any more.
    global_rng_used: bool = False
    gate_step: Optional[int] = None  # fidelity cascade: the step whose eval metric gated the run
    gate_metric: Optional[float] = None  # the eval metric at gate_step
    gated_out: bool = False  # stopped at gate_step: this is the record of a gate_step-step run
    isolation: Optional[str] = None  # what confined the candidate's process (evaluator/jail.py), in words

    @property
    def scored(self) -> bool:
        return self.outcome == "ok"

    @property
    def pass_step(self) -> Optional[int]:
        """The step at which the run reached the track's target (the benchmark's `steps` field), or None."""
        return self.steps if self.status == "pass" else None

    def benchmark_record(self) -> dict:
        """Only the fields the benchmark's own results JSON has, in its order."""
        return self.model_dump(include=set(BENCHMARK_FIELDS))

    def final_metric(self) -> float:
        return self.final_eval_mse if not math.isnan(self.final_eval_mse) else self.final_eval_accuracy


BENCHMARK_FIELDS = (
    "submission", "track", "status", "steps", "max_steps", "eval_every", "train_samples", "eval_samples",
    "batch_size", "initial_eval_mse", "final_eval_mse", "best_eval_mse", "initial_eval_accuracy",
    "final_eval_accuracy", "best_eval_accuracy", "target_mse", "target_accuracy", "last_train_loss",
    "training_wall_time_s", "torch", "device", "platform", "date_utc",
)
