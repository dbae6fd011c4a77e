"""The red-team suite: each cheat is caught and labelled, by the policy and again by the sandbox alone.

Layer 1 (policy on, as in every run) must reject each file statically, naming a rule. Layer 2
(policy off) must still contain it: the outcome below, with the engine and its files unharmed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluator.policy import check_source
from evaluator.sandbox import Limits, Sandbox
from tests.conftest import ADAMW_SUBMISSION, HOSTILE

# file -> (a policy rule it must break, the sandbox's own verdict with the policy off, text in the error)
CHEATS = {
    "gc_eval_data.py": ("import", "rejected", "gc.get_objects"),
    # Python audits sys._getframe but not tb_frame.f_back: at run time this walk cannot be refused,
    # so the policy's introspection rule is the defence (and held-out seeds the backstop).
    "frame_peek.py": ("introspection", "ok", None),
    "monkeypatch_loss.py": ("monkeypatch", "rejected", "torch.nn.functional.mse_loss"),
    "monkeypatch_forward.py": ("monkeypatch", "rejected", "torch.nn.Linear.forward"),
    "reseed_global_rng.py": ("rng", "ok", None),  # contained, and flagged as global_rng_used
    "sleep_wall_time.py": ("import", "timeout", "wall-clock limit"),
    "print_flood.py": (None, "crash", "File too large"),
    "fork_bomb.py": ("import", "rejected", "os.fork"),
    "write_outside_scratch.py": ("builtin", "rejected", "synth-redteam-escape"),
}


@pytest.fixture(scope="module")
def raw_sandbox():
    with Sandbox(Limits(timeout_s=3, memory_mb=1024, check_policy=False)) as sandbox:
        sandbox.warm("single_ar")
        yield sandbox


@pytest.mark.parametrize("name", sorted(CHEATS))
def test_policy_layer_names_the_rule(name):
    rule = CHEATS[name][0]
    violations = check_source((HOSTILE / name).read_text())
    if rule is None:  # printing is legal Python; only the sandbox's output cap stops the flood
        assert violations == []
    else:
        assert rule in {v.rule for v in violations}, violations
        assert all(v.line >= 1 for v in violations)


@pytest.mark.parametrize("name", sorted(CHEATS))
def test_sandbox_layer_contains_it(raw_sandbox, name):
    _, outcome, needle = CHEATS[name]
    escape = Path("/tmp/synth-redteam-escape.txt")
    escape.unlink(missing_ok=True)
    result = raw_sandbox.evaluate((HOSTILE / name).read_text(), "single_ar", steps=3)
    assert result.outcome == outcome, result.error
    if needle:
        assert needle in (result.error or "")
    if name == "reseed_global_rng.py":
        assert result.global_rng_used
    assert not escape.exists()


def test_worker_is_unharmed_after_the_suite(raw_sandbox):
    result = raw_sandbox.evaluate(ADAMW_SUBMISSION, "single_ar", steps=3)
    assert result.outcome == "ok" and not result.global_rng_used


def test_teacher_reconstruction_fails_the_dynamic_checks():
    """With the policy off, the seed-1729 cheat wins its own seeds, and the trust checks expose it."""
    from evaluator.pool import EvalJob, LocalPool
    from synth.trust import assess

    cheat = (HOSTILE / "teacher_from_seed_1729.py").read_text()
    with LocalPool(workers=2, limits=Limits(check_policy=False)) as pool:
        runs = dict(pool.evaluate_many([("cheat", EvalJob(cheat, "random_teacher", steps=2)),
                                        ("honest", EvalJob(ADAMW_SUBMISSION, "random_teacher", steps=2))]))
        search, honest = runs["cheat"], runs["honest"]
        report, _ = assess(pool, cheat, "random_teacher", search, steps=2, k=1)
    assert search.outcome == "ok" and search.final_eval_mse < honest.final_eval_mse / 100
    assert report["heldout"]["verdict"] == "fail", report
    assert report["gradient_dependence"]["verdict"] == "fail", report
