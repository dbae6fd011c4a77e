"""Hostile candidates driven through the real sandbox: each is contained and recorded, never raised."""

from __future__ import annotations

import socket

import pytest

from evaluator.sandbox import Limits, Sandbox
from tests.conftest import ADAMW_SUBMISSION, HOSTILE

STEPS = 5  # a few real steps on single_ar: enough to reach the candidate's step()


def optimizer_with_step(body: str, init: str = "") -> str:
    """A minimal Submission whose step() runs `body` (indented by the caller's needs)."""
    return (
        "import torch\n\n\n"
        "class Submission(torch.optim.Optimizer):\n"
        "    def __init__(self, params):\n"
        "        super().__init__(params, dict(lr=0.01))\n" + init +
        "\n    @torch.no_grad()\n"
        "    def step(self, closure=None):\n" + "".join(f"        {line}\n" for line in body.splitlines())
    )


@pytest.fixture(scope="module")
def raw_sandbox(tmp_path_factory):
    """The wall alone: policy and audit hook off, so hostile code actually runs and must be contained."""
    import os

    os.environ["OPENAI_API_KEY"] = "sk-engine-secret-123"
    os.environ["HF_TOKEN"] = "hf-engine-token-456"
    try:
        with Sandbox(Limits(timeout_s=3, memory_mb=1024, check_policy=False)) as sandbox:
            sandbox.warm("single_ar")
            yield sandbox
    finally:
        del os.environ["OPENAI_API_KEY"], os.environ["HF_TOKEN"]


def test_infinite_loop_is_killed_at_the_limit(raw_sandbox):
    result = raw_sandbox.evaluate(optimizer_with_step("while True:\n    pass"), "single_ar", steps=STEPS)
    assert result.outcome == "timeout"
    assert "3 s" in result.error
    assert 3 <= result.total_s < 10


def test_50_gb_allocation_is_stopped(raw_sandbox):
    result = raw_sandbox.evaluate(optimizer_with_step("x = torch.empty(50 * 2**30 // 4 * 4, dtype=torch.float32)"),
                                  "single_ar", steps=STEPS)
    assert result.outcome == "oom", result.error


def test_engine_secrets_are_invisible(raw_sandbox):
    body = ("import os\n"
            "seen = {k: v for k, v in os.environ.items() if 'KEY' in k or 'TOKEN' in k}\n"
            "raise RuntimeError('seen=' + repr(seen) + ' home=' + os.environ.get('HOME', ''))")
    result = raw_sandbox.evaluate(optimizer_with_step(body), "single_ar", steps=STEPS)
    assert result.outcome == "crash"
    assert "seen={}" in result.error
    assert "sk-engine-secret" not in result.error and "hf-engine-token" not in result.error


def test_the_candidate_sees_no_gpu(raw_sandbox):
    """It steps CPU tensors in shared memory; a GPU would only be a way out (and, after a fork, a broken
    driver that crashes torch's own optimizers on a CUDA machine)."""
    body = ("import os\n"
            "raise RuntimeError('cuda=' + repr(os.environ.get('CUDA_VISIBLE_DEVICES')) + "
            "' available=' + repr(torch.cuda.is_available()))")
    result = raw_sandbox.evaluate(optimizer_with_step(body), "single_ar", steps=STEPS)
    assert result.outcome == "crash"
    assert "cuda='' available=False" in result.error


def test_engine_environ_cannot_be_read_through_proc(raw_sandbox):
    import os

    body = f"raise RuntimeError(open('/proc/{os.getpid()}/environ').read())"
    result = raw_sandbox.evaluate(optimizer_with_step(body), "single_ar", steps=STEPS)
    assert result.outcome == "crash"
    assert "No such file or directory" in result.error  # the engine is not in the jail's pid namespace
    assert "sk-engine-secret" not in result.error


def test_socket_connection_fails_and_reaches_nobody(raw_sandbox):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    port = listener.getsockname()[1]
    body = f"import socket\nsocket.socket().connect(('127.0.0.1', {port}))"
    result = raw_sandbox.evaluate(optimizer_with_step(body), "single_ar", steps=STEPS)
    assert result.outcome == "crash"
    assert "socket" in result.error and "Operation not permitted" in result.error
    with pytest.raises(BlockingIOError):
        listener.accept()  # nobody ever connected
    listener.close()


def test_raise_records_the_traceback_tail(raw_sandbox):
    result = raw_sandbox.evaluate(optimizer_with_step("raise ValueError('boom from the candidate')"),
                                  "single_ar", steps=STEPS)
    assert result.outcome == "crash"
    assert "ValueError: boom from the candidate" in result.error
    assert 'File "submission.py"' in result.error


def test_nan_parameters_are_nonfinite(raw_sandbox):
    body = "for group in self.param_groups:\n    for p in group['params']:\n        p.fill_(float('nan'))"
    result = raw_sandbox.evaluate(optimizer_with_step(body), "single_ar", steps=STEPS)
    assert result.outcome == "nonfinite"
    assert "at step 2" in result.error  # step 1 wrote NaN; step 2 is the first loss to see it


def test_writing_outside_scratch_is_blocked(raw_sandbox, tmp_path):
    target = tmp_path / "escaped.txt"
    result = raw_sandbox.evaluate(optimizer_with_step(f"open({str(target)!r}, 'w').write('x')"),
                                  "single_ar", steps=STEPS)
    assert result.outcome == "crash" and "No such file or directory" in result.error  # the host's files are not there
    assert not target.exists()


def test_spawning_a_process_is_blocked(raw_sandbox):
    body = "import subprocess\nsubprocess.run(['true'])"
    result = raw_sandbox.evaluate(optimizer_with_step(body), "single_ar", steps=STEPS)
    assert result.outcome == "crash"
    assert "subprocess" in result.error and "Operation not permitted" in result.error


def test_engine_survives_and_still_scores_faithfully(raw_sandbox):
    """After every hostile candidate above, the same worker scores AdamW like a fresh one."""
    survivor = raw_sandbox.evaluate(ADAMW_SUBMISSION, "single_ar", steps=50)
    with Sandbox() as fresh:
        reference = fresh.evaluate(ADAMW_SUBMISSION, "single_ar", steps=50)
    assert survivor.outcome == "ok"
    assert survivor.final_eval_accuracy == reference.final_eval_accuracy
    assert survivor.last_train_loss == reference.last_train_loss


def test_a_killed_worker_is_replaced(raw_sandbox):
    import os
    import signal

    raw_sandbox.evaluate(ADAMW_SUBMISSION, "single_ar", steps=1)
    os.killpg(raw_sandbox.proc.pid, signal.SIGKILL)
    raw_sandbox.proc.wait()
    result = raw_sandbox.evaluate(ADAMW_SUBMISSION, "single_ar", steps=STEPS)
    assert result.outcome == "ok"


# ------------------------------------------------------------------ the first layer: policy
@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(Limits(timeout_s=10)) as box:
        yield box


def test_teacher_reconstruction_from_seed_1729_is_rejected(sandbox):
    result = sandbox.evaluate((HOSTILE / "teacher_from_seed_1729.py").read_text(), "random_teacher", steps=2)
    assert result.outcome == "rejected"
    assert result.error.startswith("policy: line ")
    assert sandbox.proc is None  # rejected statically: nothing was even started


def test_two_argument_constructor_is_rejected_with_the_contract_rule(sandbox):
    result = sandbox.evaluate((HOSTILE / "two_arg_constructor.py").read_text(), "single_ar", steps=2)
    assert result.outcome == "rejected"
    assert "contract-init" in result.error


def test_a_worker_killed_mid_candidate_requeues_it():
    """The worker dies while a candidate trains; the candidate is re-run on a fresh worker, once."""
    import os
    import signal
    import threading

    with Sandbox(Limits(timeout_s=120)) as sandbox:
        sandbox.evaluate(ADAMW_SUBMISSION, "single_ar", steps=1)  # a warm worker to kill
        victim = sandbox.proc.pid
        killer = threading.Timer(0.5, lambda: os.killpg(victim, signal.SIGKILL))
        killer.start()  # the 400-step run below takes ~3 s: the kill lands mid-candidate
        result = sandbox.evaluate(ADAMW_SUBMISSION, "single_ar")
        killer.join()
        assert result.outcome == "ok" and result.final_eval_accuracy == 0.619384765625
        assert sandbox.proc.pid != victim and sandbox.restarts == 1


def test_without_bubblewrap_the_isolation_line_says_so_and_seccomp_still_holds(monkeypatch):
    """A host without bubblewrap (here: not on the worker's PATH) runs candidates without namespaces,
    says so in capitals, and the kernel still refuses sockets and processes."""
    monkeypatch.setenv("PATH", "/nonexistent")
    with Sandbox(Limits(timeout_s=20, check_policy=False)) as box:
        result = box.evaluate(optimizer_with_step("import socket\nsocket.socket()"), "single_ar", steps=2)
        forked = box.evaluate(optimizer_with_step("import os\nos.fork()"), "single_ar", steps=2)
        assert box.isolation.startswith("REDUCED ISOLATION (bubblewrap (bwrap) is not installed")
    assert result.outcome == "crash" and "Operation not permitted" in result.error
    assert forked.outcome == "crash" and "Operation not permitted" in forked.error


def test_a_pools_cpu_workers_keep_to_one_core_each_round_robin():
    """Their jails and candidates are forked from them, so they inherit the core (README: the overhead)."""
    import os

    from evaluator.pool import LocalPool

    cores = sorted(os.sched_getaffinity(0))
    with LocalPool(workers=len(cores) + 1) as pool:  # one more worker than cores: the first core twice
        pool.warm("single_ar", steps=1)
        pinned = [os.sched_getaffinity(slot.proc.pid) for slot in pool.slots]
    assert pinned == [{cores[i % len(cores)]} for i in range(len(cores) + 1)]
