"""The cascade's gate inside one run: stopping at step K gives the K-step run's record, going on
gives the ungated run's record, bit for bit (so neither a screened nor a promoted child is scored
differently from the benchmark)."""

import math

import pytest
import torch

from evaluator.loop import Gate, train
from evaluator.tracks import build_track_data, get_track, seed_set

STEPS = 120  # short runs: the property holds at any length


def adamw(params):
    return torch.optim.AdamW(params, lr=1e-2, betas=(0.9, 0.99), weight_decay=0)


@pytest.fixture(scope="module")
def data():
    torch.set_num_threads(1)
    return build_track_data(get_track("single_ar"), seed_set("benchmark"), max_steps=STEPS)


def scores(result) -> dict:
    """Everything but wall times and dates, NaN made comparable."""
    dump = result.model_dump(exclude={"training_wall_time_s", "date_utc", "gate_step", "gate_metric", "gated_out"})
    return {k: ("nan" if isinstance(v, float) and math.isnan(v) else v) for k, v in dump.items()}


@pytest.mark.parametrize("gate_step", [50, 30])  # an eval point, and a step between eval points
def test_a_stopped_run_is_the_short_run(data, gate_step):
    short = train(adamw, data, steps=gate_step)
    stopped = train(adamw, data, steps=STEPS, gate=Gate(gate_step, threshold=1.1))  # no accuracy reaches 1.1
    assert stopped.gated_out and stopped.max_steps == gate_step
    assert scores(stopped) == scores(short)
    assert stopped.gate_metric == short.final_eval_accuracy


@pytest.mark.parametrize("gate_step", [50, 30])
def test_a_run_that_goes_on_is_the_ungated_run(data, gate_step):
    ungated = train(adamw, data, steps=STEPS)
    kept = train(adamw, data, steps=STEPS, gate=Gate(gate_step, threshold=0.0))
    recorded = train(adamw, data, steps=STEPS, gate=Gate(gate_step, threshold=None))
    assert not kept.gated_out and kept.max_steps == STEPS
    assert scores(kept) == scores(ungated) == scores(recorded)
    assert [p.step for p in kept.curve] == [p.step for p in ungated.curve]  # no extra point at step 30
    assert kept.gate_metric == recorded.gate_metric == train(adamw, data, steps=gate_step).final_eval_accuracy


def test_the_gate_compares_in_the_metrics_direction():
    assert Gate(100, 0.5).admits(0.5, regression=False) and not Gate(100, 0.5).admits(0.49, regression=False)
    assert Gate(100, 3.0).admits(2.0, regression=True) and not Gate(100, 3.0).admits(4.0, regression=True)
    assert not Gate(100, 0.5).admits(float("nan"), regression=False)
    assert Gate(100, None).admits(float("nan"), regression=True)
