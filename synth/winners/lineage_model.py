"""lineage.json's shape, as a pydantic model: scripts that read exports get a published schema
(docs/lineage.schema.json, kept current by tests/test_export_transfer.py) instead of guessing."""

from __future__ import annotations

import json
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScoredWith(Strict):
    """Where and under which limits the export re-scored the file: the run's own."""

    device: str
    steps: int
    timeout_s: float = Field(description="the per-candidate limit the re-score ran under, seconds")
    memory_mb: Optional[int]


class BenchmarkVerdict(Strict):
    verdict: str = Field(description="`pass @ 150`, `fail 0.918`, `MSE 58.3`, or the failed outcome")
    outcome: str
    status: str
    steps: int
    final_metric: Optional[float] = Field(description="final eval MSE (random_teacher) or accuracy (recall)")


class HeldoutVerdict(Strict):
    k: int = Field(description="held-out seed sets scored (heldout-1 .. heldout-k: all five seeds changed)")
    scored: int
    passed: int
    mean: Optional[float]
    std: Optional[float]
    values: list[Optional[float]]
    verdicts: list[str]


class TransferRow(Strict):
    track: str
    steps: int
    benchmark_budget: bool = Field(description="steps is the track's benchmark budget (400)")
    device: str
    metric: str
    benchmark: Optional[BenchmarkVerdict] = None
    heldout: Optional[HeldoutVerdict] = None


class LineageRecord(Strict):
    candidate: int
    track: str = Field(description="the track the candidate was evolved on (the first of `tracks`)")
    tracks: list[str] = Field(default_factory=list, description="every track the search scored it on, in order")
    search_verdicts: Optional[dict[str, str]] = Field(None, description="a multi-track run's search verdict on "
                                                                        "each of its tracks")
    run_seed: Optional[int]
    benchmark_result: dict[str, Any] = Field(description="the benchmark's own result record, field for field")
    curve: list[dict[str, Any]]
    verified_by_rescoring: bool
    rescored_with: Optional[ScoredWith] = None
    heldout: Optional[dict[str, Any]] = None
    compliance: Optional[dict[str, Any]] = None
    horizon: Optional[dict[str, Any]] = None
    transfer: list[TransferRow] = Field(default_factory=list,
                                        description="the candidate's verdict on every track it was scored on")
    lineage: list[dict[str, Any]]


def schema_text() -> str:
    return json.dumps(LineageRecord.model_json_schema(), indent=2, sort_keys=True) + "\n"
