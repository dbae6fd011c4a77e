"""The trusted side of a candidate (evaluator/remote.py), driven with a real jail: the model trains on
the shared parameters without a copy, and every evaluation reads a private snapshot that nothing the
candidate's process writes afterwards can change."""

from __future__ import annotations

import os
import time

import pytest
import torch
from torch import nn

from evaluator.channel import CandidateFailed
from evaluator.loop import Gate, train
from evaluator.remote import CandidateSession, RemoteOptimizer
from evaluator.worker import Worker
from tests.conftest import ADAMW_SUBMISSION, CRASHES_AT_STEP_2, HOSTILE

SGD = '''import torch


class Submission(torch.optim.SGD):
    def __init__(self, params):
        super().__init__(params, lr=0.5)
'''

# Keeps the last two steps' gradients uncopied (one as a view) and steps along their sum: right only
# if no later step's gradients land where a kept one lies.
KEEPS_TWO = '''import torch


class Submission(torch.optim.Optimizer):
    def __init__(self, params):
        super().__init__(params, dict(lr=0.1))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                kept = self.state[p].setdefault("kept", [])
                kept.append(p.grad if len(kept) % 2 else p.grad.view(-1))
                del kept[:-2]
                p.sub_(sum(g.view_as(p) for g in kept), alpha=group["lr"])
'''

MARKER, CHEAT = 7.0, 1000.0

# Steps honestly, and after its first step leaves a thread behind that overwrites every parameter
# with CHEAT once the first step's gradient reads MARKER. The test writes MARKER there, standing in for
# "the worker is evaluating now", a moment no candidate can time but a test can.
LATE_WRITER = f'''import threading
import time

import torch


class Submission(torch.optim.SGD):
    def __init__(self, params):
        super().__init__(params, lr=0.5)
        self.armed = False

    def step(self, closure=None):
        super().step()
        if self.armed:
            return
        self.armed = True
        params = [p for group in self.param_groups for p in group["params"]]
        grad = params[0].grad  # this step's gradient region in the shared file

        def overwrite():
            while grad.flatten()[0].item() != {MARKER}:
                time.sleep(0.001)
            with torch.no_grad():
                for p in params:
                    p.fill_({CHEAT})

        threading.Thread(target=overwrite, daemon=True).start()
'''


def model_parameters() -> list[nn.Parameter]:
    return [nn.Parameter(torch.ones(4, 3)), nn.Parameter(torch.zeros(3))]


def step_with_unit_gradients(optimizer: RemoteOptimizer, params: list[nn.Parameter]) -> None:
    for p in params:
        p.grad = torch.ones_like(p)
    optimizer.step()


def wait_until(condition, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the candidate's thread never wrote"
        time.sleep(0.001)


def test_training_reads_the_shared_parameters_and_evaluation_a_private_copy(jail):
    params = model_parameters()
    own_storage = [p.data_ptr() for p in params]
    session = CandidateSession(jail, SGD, timeout_s=30, memory_mb=None)
    try:
        optimizer = RemoteOptimizer(params, session)
        shared = session.shared.params
        assert [p.data_ptr() for p in params] == own_storage  # the initial evaluation reads the model's own
        step_with_unit_gradients(optimizer, params)
        assert [p.data_ptr() for p in params] == [s.data_ptr() for s in shared]  # no copy back
        assert torch.equal(params[0], torch.full((4, 3), 0.5)) and torch.equal(params[1], torch.full((3,), -0.5))
        session.snapshot()
        assert [p.data_ptr() for p in params] == own_storage
        assert torch.equal(params[0], torch.full((4, 3), 0.5)) and torch.equal(params[1], torch.full((3,), -0.5))
        shared[0].fill_(9.0)  # a write to the shared file after the snapshot
        assert torch.equal(params[0], torch.full((4, 3), 0.5))
        step_with_unit_gradients(optimizer, params)  # the candidate steps from what the shared file holds
        assert [p.data_ptr() for p in params] == [s.data_ptr() for s in shared]
        assert torch.equal(params[0], torch.full((4, 3), 8.5)) and torch.equal(params[1], torch.full((3,), -1.0))
    finally:
        session.close()


def test_a_thread_writing_after_the_snapshot_changes_no_evaluation(jail):
    """The hostile write lands after the snapshot (the test times it): the evaluated parameters keep
    what the step returned, though the shared file and so the next training step hold the cheat."""
    params = model_parameters()
    session = CandidateSession(jail, LATE_WRITER, timeout_s=30, memory_mb=None, friendly=False)
    try:
        optimizer = RemoteOptimizer(params, session)
        step_with_unit_gradients(optimizer, params)
        stepped = [p.detach().clone() for p in params]
        session.snapshot()
        session.shared.grads[session.region][0].fill_(MARKER)  # step 1's gradient region: the thread's signal
        wait_until(lambda: all(bool((s == CHEAT).all()) for s in session.shared.params))
        assert all(torch.equal(p, s) for p, s in zip(params, stepped))
        session.snapshot()  # no step since: the snapshot stands
        assert all(torch.equal(p, s) for p, s in zip(params, stepped))
        step_with_unit_gradients(optimizer, params)
        assert all(bool((p == CHEAT - 0.5).all()) for p in params)  # the cheat reached training, as a step could
    finally:
        session.close()


def test_a_run_that_fails_mid_way_leaves_the_model_private_and_the_file_unmapped(jail):
    params = model_parameters()
    own_storage = [p.data_ptr() for p in params]
    session = CandidateSession(jail, CRASHES_AT_STEP_2, timeout_s=30, memory_mb=None)
    try:
        optimizer = RemoteOptimizer(params, session)
        step_with_unit_gradients(optimizer, params)
        with pytest.raises(CandidateFailed, match="on purpose"):
            step_with_unit_gradients(optimizer, params)
        shared = session.shared
    finally:
        session.close()
    assert shared.map.closed  # no view of it is left in the worker
    assert [p.data_ptr() for p in params] == own_storage
    assert torch.equal(params[0], torch.full((4, 3), 0.5))


def test_the_worker_snapshots_before_every_evaluation(monkeypatch):
    """Initial, gate, every eval point and the final evaluation: each reads a snapshot taken after the
    last step, and the run's record is the in-process loop's, bit for bit."""
    taken: list[tuple[int, bool]] = []  # (steps so far, whether the model was training on the shared file)
    snapshot = CandidateSession.snapshot

    def recording(session):
        taken.append((session.seq, session.aliased))
        snapshot(session)

    monkeypatch.setattr(CandidateSession, "snapshot", recording)
    threads = torch.get_num_threads()
    worker = Worker()  # one thread, as a worker process runs
    namespace: dict = {}
    exec(ADAMW_SUBMISSION, namespace)  # noqa: S102 - the project's own reference optimizer
    try:
        payload = worker.handle({"op": "eval", "source": ADAMW_SUBMISSION, "track": "single_ar", "steps": 60,
                                 "gate_step": 30, "timeout_s": 60})
        bare = train(namespace["Submission"], worker.track_data("single_ar", "benchmark", 60), steps=60,
                     gate=Gate(30))
    finally:
        worker.close()
        torch.set_num_threads(threads)
    assert payload.get("outcome", "ok") == "ok", payload
    assert taken == [(0, False), (30, True), (50, True), (60, True), (60, False)]
    assert [(p["step"], p["metric"], p["loss"]) for p in payload["curve"]] == \
        [(p.step, p.metric, p.loss) for p in bare.curve]
    assert payload["last_train_loss"] == bare.last_train_loss and payload["gate_metric"] == bare.gate_metric


def stepped_remotely(jail, source: str, gradients: list[list[torch.Tensor]]) -> tuple[list[torch.Tensor], list[int]]:
    """The parameters after one remote step per gradient list, and the region each step used."""
    params, regions = model_parameters(), []
    session = CandidateSession(jail, source, timeout_s=30, memory_mb=None)
    try:
        optimizer = RemoteOptimizer(params, session)
        for grads in gradients:
            optimizer.zero_grad(set_to_none=True)
            for p, g in zip(params, grads):
                p.grad = g.clone()
            optimizer.step()
            regions.append(session.region)
        session.snapshot()
    finally:
        session.close()
    return [p.detach().clone() for p in params], regions


def stepped_here(source: str, gradients: list[list[torch.Tensor]]) -> list[torch.Tensor]:
    namespace: dict = {}
    exec(source, namespace)  # noqa: S102 - the tests' own optimizers
    params = model_parameters()
    optimizer = namespace["Submission"](params)
    for grads in gradients:
        optimizer.zero_grad(set_to_none=True)
        for p, g in zip(params, grads):
            p.grad = g.clone()
        optimizer.step()
    return [p.detach() for p in params]


def random_gradients(steps: int) -> list[list[torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    return [[torch.randn(p.shape, generator=gen) for p in model_parameters()] for _ in range(steps)]


def test_an_optimizer_that_keeps_no_gradient_gets_every_step_in_one_region(jail):
    """One region, warm in the cache, rather than a rotation over three."""
    gradients = random_gradients(6)
    params, regions = stepped_remotely(jail, ADAMW_SUBMISSION, gradients)
    assert regions == [0] * 6
    assert all(torch.equal(a, b) for a, b in zip(params, stepped_here(ADAMW_SUBMISSION, gradients)))


def test_gradients_an_optimizer_keeps_are_never_overwritten(jail):
    gradients = random_gradients(7)
    params, regions = stepped_remotely(jail, KEEPS_TWO, gradients)
    assert len(set(regions)) == 3 and all(a != b for a, b in zip(regions, regions[1:]))
    assert all(torch.equal(a, b) for a, b in zip(params, stepped_here(KEEPS_TWO, gradients)))


def test_a_forged_step_report_of_the_wrong_size_is_the_candidates_crash(jail):
    source = (HOSTILE / "harm_channel_held_mask.py").read_text()
    params = model_parameters()
    session = CandidateSession(jail, source, timeout_s=30, memory_mb=None, friendly=False)
    try:
        optimizer = RemoteOptimizer(params, session)
        with pytest.raises(CandidateFailed, match="2-byte payload where 1 were expected") as failed:
            step_with_unit_gradients(optimizer, params)
        assert failed.value.outcome == "crash"
    finally:
        session.close()
    params, _ = stepped_remotely(jail, SGD, [[torch.ones(4, 3), torch.ones(3)]])  # the next candidate is served
    assert torch.equal(params[0], torch.full((4, 3), 0.5))


def test_held_regions_are_read_from_the_tensors_on_each_slot_and_rotate_where_torch_cannot_count(monkeypatch):
    from evaluator import candidate_host, channel

    tensors = [p.detach() for p in model_parameters()]
    layout = channel.Layout.plan(0, tensors)
    fd = channel.create_shared_file(b"", layout)
    try:
        shared = channel.SharedTensors(fd, layout)
    finally:
        os.close(fd)
    stepper = candidate_host.Stepper(None, b"", shared)
    assert stepper._held_regions(0b111) == 0
    kept = shared.grads[1][0].view(-1)  # what an optimizer keeping a view of step's gradient holds
    assert stepper._held_regions(0b111) == 0b010
    assert stepper._held_regions(0b001) == 0  # only the regions asked about
    del kept
    kept = shared.grads[2][1].detach()  # an alias of the tensor
    assert stepper._held_regions(0b111) == 0b100
    del kept
    assert stepper._held_regions(0b111) == 0
    monkeypatch.setattr(candidate_host, "_STORAGE_USE_COUNT", None)
    assert stepper._held_regions(0b011) == 0b011  # cannot tell: what was handed out counts as kept


REBINDS_GRAD_DATA = '''import torch


class Submission(torch.optim.SGD):
    """Legacy style: rescales each gradient by rebinding its `.data` rather than in place."""

    def __init__(self, params):
        super().__init__(params, lr=0.1)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                p.grad.data = p.grad.data * 2
        return super().step()
'''


def test_an_optimizer_that_rebinds_a_gradients_data_still_gets_each_new_gradient(jail):
    gradients = random_gradients(5)
    params, _ = stepped_remotely(jail, REBINDS_GRAD_DATA, gradients)
    assert all(torch.equal(a, b) for a, b in zip(params, stepped_here(REBINDS_GRAD_DATA, gradients)))
