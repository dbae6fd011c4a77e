"""Seeds: the rendered programs score exactly what the torch.optim optimizers they transcribe score.

Each track run is ~3 s on one CPU thread, so the torch comparisons use 150 steps (curves at steps
0, 50, 100, 150 must match), and AdamW's full 400-step run is checked against the benchmark's reference figures (docs/BENCHMARK.md).
"""

import functools

import pytest
import torch

from evaluator.loop import train
from evaluator.tracks import build_track_data, get_track
from primitives.program import Program
from primitives.seeds import SEED_PROGRAMS, seed_programs

TORCH_EQUIVALENTS = {
    "sgd_momentum": functools.partial(torch.optim.SGD, lr=0.1, momentum=0.9),
    "adam": functools.partial(torch.optim.Adam, lr=1e-3),
    "rmsprop": functools.partial(torch.optim.RMSprop, lr=0.01),
    "adagrad": functools.partial(torch.optim.Adagrad, lr=0.01),
    "adamw_decay": functools.partial(torch.optim.AdamW, lr=1e-2, betas=(0.9, 0.99), weight_decay=0.1),
}
ADAMW_REFERENCE = {"single_ar": 0.619384765625, "mqar": 0.91802978515625}  # docs/BENCHMARK.md, 400 steps
SHORT_STEPS = 150


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The benchmark runs on one thread; the reference figures depend on it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module", params=["single_ar", "mqar"])
def track_data(request):
    return build_track_data(get_track(request.param))


def rendered(name):
    namespace = {}
    exec(compile(seed_programs()[name].render(title=name), name, "exec"), namespace)
    return namespace["Submission"]


def test_seed_set_is_complete_and_parses():
    expected = {"sgd_momentum", "adam", "adamw", "rmsprop", "adagrad", "lion", "muon", "adafactor_like"}
    assert expected <= set(SEED_PROGRAMS)
    for name, program in seed_programs().items():
        assert isinstance(program, Program) and program.to_text() == SEED_PROGRAMS[name]


@pytest.mark.parametrize("name", sorted(TORCH_EQUIVALENTS))
def test_seed_scores_like_torch(name, track_data):
    ours = train(rendered(name), track_data, steps=SHORT_STEPS)
    theirs = train(TORCH_EQUIVALENTS[name], track_data, steps=SHORT_STEPS)
    assert [p.step for p in ours.curve] == [p.step for p in theirs.curve]
    for a, b in zip(ours.curve, theirs.curve):
        assert abs(a.metric - b.metric) <= 1e-5, (name, a, b)
    assert abs(ours.final_eval_accuracy - theirs.final_eval_accuracy) <= 1e-5


def test_adamw_seed_reproduces_the_benchmark_reference(track_data):
    result = train(rendered("adamw"), track_data)
    assert abs(result.final_eval_accuracy - ADAMW_REFERENCE[track_data.spec.name]) <= 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TORCH_EQUIVALENTS))
def test_seed_scores_like_torch_over_the_full_budget(name, track_data):
    """The issue's bar at the benchmark's own 400 steps (minutes: `pytest -m slow`)."""
    ours, theirs = train(rendered(name), track_data), train(TORCH_EQUIVALENTS[name], track_data)
    assert abs(ours.final_eval_accuracy - theirs.final_eval_accuracy) <= 1e-5, name


def test_opt_in_shampoo_seed_learns_and_stays_out_of_the_default_population(track_data):
    """Named in a config it starts a run; never in the default population (runs and figures stay as they were)."""
    assert "shampoo" not in seed_programs() and "shampoo" in seed_programs(opt_in=True)
    namespace = {}
    exec(compile(seed_programs(opt_in=True)["shampoo"].render(title="shampoo"), "shampoo", "exec"), namespace)
    result = train(namespace["Submission"], track_data, steps=100)
    assert result.outcome == "ok" and result.final_eval_accuracy > 3 / 64  # chance is 1/64
