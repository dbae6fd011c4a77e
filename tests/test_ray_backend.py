"""The Ray backend on a real local Ray instance: same results as a local Sandbox, nothing lost or doubled."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

import pytest

pytest.importorskip("ray")

from evaluator.pool import EvalJob  # noqa: E402
from evaluator.ray_backend import RayPool  # noqa: E402
from evaluator.sandbox import Sandbox  # noqa: E402
from tests.conftest import ADAMW_SUBMISSION  # noqa: E402

RAISES_SUBMISSION = '''import torch


class Submission(torch.optim.Optimizer):
    def __init__(self, params):
        raise RuntimeError("this optimizer refuses to start")
'''
TIMING_FIELDS = {"training_wall_time_s", "date_utc", "setup_s", "total_s", "data_build_s"}


def comparable(result) -> str:
    """Everything a result says except when it ran and how long it took (JSON: NaN compares equal)."""
    return result.model_dump_json(exclude=TIMING_FIELDS)


@pytest.fixture(scope="module")
def pool():
    import ray

    assert not ray.is_initialized(), "another test left Ray running"
    with RayPool(workers=2) as pool:  # a local instance with num_cpus=2
        yield pool
    assert not ray.is_initialized()  # the pool started Ray, so it shut it down


@pytest.fixture(scope="module")
def local():
    with Sandbox() as sandbox:
        yield sandbox


def test_evaluate_many_matches_a_local_sandbox(pool, local):
    jobs = [("adamw-a", EvalJob(ADAMW_SUBMISSION, "single_ar", steps=50)),
            ("raises", EvalJob(RAISES_SUBMISSION, "single_ar", steps=50)),
            ("adamw-b", EvalJob(ADAMW_SUBMISSION, "single_ar", steps=50, submission="b"))]
    results = list(pool.evaluate_many(jobs))
    assert Counter(key for key, _ in results) == Counter(key for key, _ in jobs)
    got = dict(results)
    for key, job in jobs:
        expected = local.evaluate(job.source, job.track, steps=job.steps, seed_set=job.seed_set,
                                  submission=job.submission)
        assert comparable(got[key]) == comparable(expected), key
    assert got["adamw-a"].outcome == "ok" and got["adamw-a"].final_eval_accuracy > 0
    assert got["adamw-a"].final_eval_accuracy == got["adamw-b"].final_eval_accuracy  # bit for bit
    assert got["raises"].outcome == "crash" and "refuses to start" in got["raises"].error


def test_probe_fingerprint_matches_a_local_sandbox(pool, local):
    result = pool.probe(ADAMW_SUBMISSION)
    assert result.error is None and result.fingerprint
    assert result.fingerprint == local.probe(ADAMW_SUBMISSION).fingerprint


def test_a_killed_actor_loses_nothing(pool):
    """SIGKILL one actor while it runs a long job: the job is re-queued, every key comes back once."""
    pids = pool.pids()
    requeued_before = pool.requeued
    long_job = EvalJob(ADAMW_SUBMISSION, "single_ar", steps=400)
    futures = {pool.submit_eval(long_job): "long-0", pool.submit_eval(long_job): "long-1"}
    futures.update({pool.submit_eval(EvalJob(ADAMW_SUBMISSION, "single_ar", steps=50)): f"short-{i}"
                    for i in range(2)})
    deadline = time.monotonic() + 60
    while not pool.busy()[0]:  # the first actor is inside a long job now (answers on a side channel)
        assert time.monotonic() < deadline, "the first actor never started a job"
    assert not any(f.done() for f in futures)
    os.kill(pids[0], signal.SIGKILL)

    from concurrent.futures import as_completed

    results = [(futures[f], f.result(timeout=180)) for f in as_completed(futures, timeout=180)]
    assert Counter(key for key, _ in results) == Counter(futures.values())
    assert all(r.outcome == "ok" for _, r in results), [(k, r.outcome, r.error) for k, r in results]
    got = dict(results)
    assert got["long-0"].final_eval_accuracy == got["long-1"].final_eval_accuracy  # the rerun is the same run
    assert got["short-0"].final_eval_accuracy == got["short-1"].final_eval_accuracy
    assert pool.requeued > requeued_before
    new_pids = pool.pids()  # Ray restarted the lost actor; the other one is untouched
    assert new_pids[0] != pids[0] and new_pids[1] == pids[1]


def test_missing_ray_is_one_line(monkeypatch):
    import evaluator.ray_backend as backend

    monkeypatch.setattr(backend, "ray", None)
    with pytest.raises(RuntimeError, match=r'pip install "synth\[ray\]"') as err:
        backend.RayPool(workers=1)
    assert "\n" not in str(err.value)
