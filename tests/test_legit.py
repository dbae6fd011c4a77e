"""Legitimate but unusual optimizers: accepted by every layer, and scored exactly as the benchmark's own
process would score them (here: the benchmark's loop run in this test's process on the same data)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from evaluator.loop import train
from evaluator.policy import check_source
from evaluator.sandbox import Sandbox
from evaluator.tracks import build_track_data, get_track

LEGIT = Path(__file__).resolve().parent / "legit"
STEPS = 60  # past the first eval point (50)


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox() as box:
        box.warm("single_ar")
        yield box


@pytest.fixture(scope="module")
def data():
    return build_track_data(get_track("single_ar"))


@pytest.mark.parametrize("name", sorted(p.name for p in LEGIT.glob("*.py")))
def test_accepted_and_scored_exactly_as_in_process(sandbox, data, name):
    source = (LEGIT / name).read_text()
    assert check_source(source) == []
    result = sandbox.evaluate(source, "single_ar", steps=STEPS)
    assert result.outcome == "ok", result.error

    namespace: dict = {}
    exec(compile(source, name, "exec"), namespace)  # noqa: S102 - our own fixture files
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        expected = train(namespace["Submission"], data, steps=STEPS)
    finally:
        torch.set_num_threads(threads)
    assert [(p.step, p.metric, p.loss) for p in result.curve] == [(p.step, p.metric, p.loss) for p in expected.curve]
    assert result.last_train_loss == expected.last_train_loss
    assert result.final_eval_accuracy == expected.final_eval_accuracy
