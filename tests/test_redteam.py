"""The red-team suite: hostile files run with the static policy switched off, so the only wall left
is the operating system's (the jail). Each file attempts one attack and then trains honestly.

Checked after every file, whatever its outcome: no secret of the engine's reached its output, no
marker file appeared on the host, no connection reached a loopback listener, the worker survived,
no process of the candidate's is left, and the score is no better than the honest run the file
wraps. Cheats that need no escape (a known answer written into the weights, a crash on the noise
probe) must fail the trust checks instead.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

import pytest

from evaluator.policy import check_source
from evaluator.sandbox import Limits, Sandbox
from tests.conftest import ADAMW_SUBMISSION, HOSTILE

ENGINE_SECRET = "sk-engine-secret-123"
FILE_SECRET = "file-secret-789"
STEPS = 3
HONEST_SGD = """import torch


class Submission(torch.optim.SGD):
    def __init__(self, params):
        super().__init__(params, lr=0.05)
"""  # what every red-team file built on the SGD template does once its attack is over

# Files that fail fast or by design, with the outcome the sandbox alone must give.
OUTCOMES = {
    "sleep_wall_time.py": {"timeout"},
    "harm_memory_bomb.py": {"oom", "crash"},
    "print_flood.py": {"crash"},
    "harm_segfault.py": {"crash"},
    # writes to every descriptor also reach the shared file (mmap keeps a copy of its descriptor):
    # garbage in its own parameters and gradients at worst, which the worker copies out and fails on
    "harm_channel_garbage.py": {"crash", "nonfinite"},
    "harm_channel_flood.py": {"crash", "nonfinite", "ok"},
    "harm_channel_close.py": {"crash"},
    "cheat_forge_done.py": {"crash"},
    "harm_channel_held_mask.py": {"crash"},
    # NaN in its own gradients, if a write lands before its step reads them; the worker is untouched
    "harm_grad_slot_race.py": {"ok", "nonfinite"},
}
POLICY_ONLY = {"two_arg_constructor.py"}  # a contract error, not an attack
NEEDS_TRUST_CHECKS = {"cheat_recall_layout.py", "teacher_from_seed_1729.py", "cheat_noise_crash.py"}


def hostile_files() -> list[str]:
    return sorted(p.name for p in HOSTILE.glob("*.py") if p.name not in POLICY_ONLY)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A listener, a secret file and a marker path on the host; the engine's secret in its environment."""
    base = tmp_path_factory.mktemp("redteam")
    secret = base / "secret.txt"
    secret.write_text(FILE_SECRET)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    os.environ["OPENAI_API_KEY"] = ENGINE_SECRET
    try:
        with Sandbox(Limits(timeout_s=4, memory_mb=1024, check_policy=False)) as sandbox:
            sandbox.warm("single_ar")
            if sandbox.isolation.startswith("REDUCED") or "NO SECCOMP" in sandbox.isolation:
                pytest.skip(f"this host cannot build the full jail: {sandbox.isolation}")
            honest = sandbox.evaluate(HONEST_SGD, "single_ar", steps=STEPS)
            yield dict(sandbox=sandbox, base=base, secret=secret, listener=listener, honest=honest)
    finally:
        del os.environ["OPENAI_API_KEY"]
        listener.close()


def fill(path: Path, base: Path, secret: Path, port: int) -> str:
    source = path.read_text()
    values = {"ENGINE_PID": str(os.getpid()), "PORT": str(port), "MARKER": repr(str(base / "marker")),
              "SECRET_FILE": repr(str(secret))}
    for name, value in values.items():
        source = re.sub(rf"^{name} = .*$", f"{name} = {value}", source, count=1, flags=re.M)
    return source


def descendants(pid: int) -> list[str]:
    """Command names of every live process below `pid` (the worker: bwrap, its init, the host)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        try:
            found.append(Path(f"/proc/{child}/comm").read_text().strip())
        except OSError:
            continue
        todo += children.get(child, [])
    return found


@pytest.mark.parametrize("name", hostile_files())
def test_contained_by_the_os_alone(world, name):
    sandbox = world["sandbox"]
    port = world["listener"].getsockname()[1]
    source = fill(HOSTILE / name, world["base"], world["secret"], port)
    result = sandbox.evaluate(source, "single_ar", steps=STEPS)
    text = (result.error or "") + result.model_dump_json()
    assert ENGINE_SECRET not in text and FILE_SECRET not in text, text[-500:]
    assert "ESCAPED" not in text, text[-500:]
    assert not (world["base"] / "marker").exists()
    assert not list(Path("/dev/shm").glob("fill*")) and not Path("/tmp/planted-by-previous").exists()
    with pytest.raises(BlockingIOError):
        world["listener"].accept()  # nobody ever connected
    if name in OUTCOMES:
        assert result.outcome in OUTCOMES[name], (result.outcome, result.error)
    if result.outcome == "ok" and "(torch.optim.SGD)" in source:  # a failed attack leaves plain SGD
        honest = world["honest"]
        assert (result.final_eval_accuracy, result.last_train_loss) == (honest.final_eval_accuracy,
                                                                        honest.last_train_loss), name
    assert sandbox.proc.poll() is None, "the worker died"
    assert len(descendants(sandbox.proc.pid)) <= 3, descendants(sandbox.proc.pid)


def test_honest_reference_is_plain_sgd(world):
    assert world["honest"].outcome == "ok" and world["honest"].final_eval_accuracy > 0


def test_worker_still_scores_exactly_after_the_suite(world):
    after = world["sandbox"].evaluate(ADAMW_SUBMISSION, "single_ar", steps=50)
    with Sandbox() as fresh:
        reference = fresh.evaluate(ADAMW_SUBMISSION, "single_ar", steps=50)
    assert after.outcome == "ok"
    assert (after.final_eval_accuracy, after.last_train_loss) == (reference.final_eval_accuracy,
                                                                  reference.last_train_loss)


def test_the_jail_is_real(world):
    """What the isolation line promises: bubblewrap, an unprivileged uid, seccomp."""
    isolation = world["sandbox"].isolation
    assert isolation.startswith("bubblewrap") and "uid 65534" in isolation and "seccomp" in isolation


# ------------------------------------------------------------------ the first layer: policy
@pytest.mark.parametrize("name", ["teacher_from_seed_1729.py", "fork_bomb.py", "gc_eval_data.py",
                                  "frame_peek.py", "monkeypatch_loss.py", "monkeypatch_forward.py",
                                  "write_outside_scratch.py", "net_socket_loopback.py", "secret_environment.py",
                                  "harm_kill_everyone.py", "file_torch_save_alias.py"])
def test_policy_names_a_rule_early(name):
    violations = check_source((HOSTILE / name).read_text())
    assert violations and all(v.line >= 1 for v in violations), name


def test_policy_folds_constants_before_looking_for_hidden_seeds():
    source = ADAMW_SUBMISSION + "\nTEACHER = 12**3 + 1\nSTUDENT = -(-314159)\n"
    rules = {v.rule for v in check_source(source)}
    assert rules == {"hidden-seed"}


# ------------------------------------------------------------------ cheats that need no escape
def test_trust_checks_expose_cheats_that_need_no_escape():
    """With the policy off, the layout cheat wins its own seeds; the task-permutation check exposes it.
    The noise-crasher looks for dense embedding gradients to recognise the probe: the probe's noise
    keeps the real gradients' zeros, so it never finds out, and its noise run ends normally."""
    from evaluator.pool import EvalJob, LocalPool
    from synth.winners.trust import assess

    layout = (HOSTILE / "cheat_recall_layout.py").read_text()
    crasher = (HOSTILE / "cheat_noise_crash.py").read_text()
    with LocalPool(workers=2, limits=Limits(check_policy=False)) as pool:
        runs = dict(pool.evaluate_many([("layout", EvalJob(layout, "single_ar", steps=50)),
                                        ("crasher", EvalJob(crasher, "single_ar", steps=50))]))
        layout_report, _ = assess(pool, layout, "single_ar", runs["layout"], steps=50, k=1)
        crasher_report, crasher_runs = assess(pool, crasher, "single_ar", runs["crasher"], steps=50, k=1)
    assert runs["layout"].outcome == "ok" and runs["layout"].final_eval_accuracy == 1.0
    assert layout_report["task_permutation"]["verdict"] == "fail", layout_report
    assert runs["crasher"].outcome == "ok" and crasher_runs["noise"].outcome == "ok"


def test_a_noise_run_that_does_not_finish_fails_gradient_dependence():
    """A candidate that could recognise the probe and crash on it must not pass by crashing."""
    from evaluator.record import EvalResult
    from synth.winners.trust import verdicts

    base = dict(track="single_ar", max_steps=50, eval_every=50, train_samples=65536, eval_samples=4096,
                batch_size=256)
    search = EvalResult(**base, final_eval_accuracy=0.9)
    for outcome in ("crash", "timeout", "nonfinite"):
        noise = EvalResult(**base, outcome=outcome, error="on purpose")
        report = verdicts("single_ar", search, {"noise": noise})
        assert report["gradient_dependence"]["verdict"] == "fail" and outcome in report["gradient_dependence"]["evidence"]
    missing = verdicts("single_ar", search, {})
    assert missing["gradient_dependence"]["verdict"] == "fail"
    assert missing["task_permutation"]["verdict"] == "fail"


def test_trust_thresholds_come_from_the_runs_config():
    """The held-out slack of `[trust]` decides the verdict; a run stored before it existed gets the default."""
    from evaluator.record import EvalResult
    from synth.config import RunConfig
    from synth.winners.trust import stored_trust, verdicts

    base = dict(track="single_ar", max_steps=50, eval_every=50, train_samples=65536, eval_samples=4096,
                batch_size=256)
    search = EvalResult(**base, final_eval_accuracy=0.9)
    held = {"heldout-1": EvalResult(**base, final_eval_accuracy=0.85, seed_set="heldout-1")}
    old_run = {"track": "single_ar", "finalists": 3, "heldout": 3}
    assert verdicts("single_ar", search, held, stored_trust(old_run))["heldout"]["verdict"] == "pass"
    strict = stored_trust(RunConfig(track="single_ar", heldout_accuracy_slack=0.01).flat())
    assert strict.heldout_accuracy_slack == 0.01
    assert verdicts("single_ar", search, held, strict)["heldout"]["verdict"] == "fail"


def test_teacher_reconstruction_fails_the_dynamic_checks():
    """With the policy off, the seed-1729 cheat wins its own seeds, and the trust checks expose it."""
    from evaluator.pool import EvalJob, LocalPool
    from synth.winners.trust import assess

    cheat = (HOSTILE / "teacher_from_seed_1729.py").read_text()
    with LocalPool(workers=2, limits=Limits(check_policy=False)) as pool:
        runs = dict(pool.evaluate_many([("cheat", EvalJob(cheat, "random_teacher", steps=2)),
                                        ("honest", EvalJob(ADAMW_SUBMISSION, "random_teacher", steps=2))]))
        search, honest = runs["cheat"], runs["honest"]
        report, _ = assess(pool, cheat, "random_teacher", search, steps=2, k=1)
    assert search.outcome == "ok" and search.final_eval_mse < honest.final_eval_mse / 100
    assert report["heldout"]["verdict"] == "fail", report
    assert report["task_permutation"]["verdict"] == "fail", report
    assert report["gradient_dependence"]["verdict"] == "fail", report
