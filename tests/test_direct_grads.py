"""Embedding gradients written straight into the shared file (evaluator/direct_grads.py): the same bits
as aten's own kernel, where the session says, and only while the session runs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from evaluator import direct_grads
from evaluator.channel import CandidateFailed
from evaluator.loop import train
from evaluator.remote import CandidateSession, RemoteOptimizer
from evaluator.tracks import build_track_data, get_track
from evaluator.worker import Worker
from tests.conftest import ADAMW_SUBMISSION, CRASHES_AT_STEP_2

NATIVE = torch.ops.aten.embedding_dense_backward


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a.view(torch.uint8), b.view(torch.uint8))


@pytest.mark.parametrize("dtype", direct_grads.EXACT_DTYPES)
@pytest.mark.parametrize("padding_idx, scale_grad_by_freq", [(-1, False), (3, False), (-1, True), (5, True)])
def test_the_kernel_computes_the_native_kernels_bits(dtype, padding_idx, scale_grad_by_freq):
    gen = torch.Generator().manual_seed(0)
    num_weights, dim = 50, 24
    indices = torch.randint(0, 12, (64, 9), generator=gen)  # few distinct rows: many sums of many terms
    grad = torch.randn(9, 64, dim, generator=gen).to(dtype).transpose(0, 1)  # not contiguous
    expected = NATIVE(grad, indices, num_weights, padding_idx, scale_grad_by_freq)
    slot = torch.full((num_weights, dim), float("nan"), dtype=dtype)  # what a slot held from an earlier step
    with direct_grads.into(lambda shape, dt: slot if (shape, dt) == ((num_weights, dim), dtype) else None):
        into_slot = NATIVE(grad, indices, num_weights, padding_idx, scale_grad_by_freq)
        fresh = NATIVE(grad, indices, num_weights + 1, padding_idx, scale_grad_by_freq)  # no slot fits: zeros
    assert into_slot.data_ptr() == slot.data_ptr()
    assert same_bits(into_slot, expected)
    assert same_bits(fresh[:num_weights], expected) and not fresh[num_weights].any()


def test_autograd_makes_the_claimed_slot_the_gradient_and_the_native_kernel_returns_after():
    embedding = nn.Embedding(30, 8)
    tokens = torch.randint(0, 30, (16, 5), generator=torch.Generator().manual_seed(1))
    embedding(tokens).pow(2).sum().backward()
    native = embedding.weight.grad
    embedding.weight.grad = None
    slot, claims = torch.empty(30, 8), []

    def claim(shape, dtype):
        claims.append(shape)
        return slot.view(slot.shape)

    with direct_grads.into(claim):
        embedding(tokens).pow(2).sum().backward()
        with pytest.raises(RuntimeError, match="another session"), direct_grads.into(claim):
            pass
    assert embedding.weight.grad.data_ptr() == slot.data_ptr() and same_bits(embedding.weight.grad, native)
    embedding.weight.grad = None
    embedding(tokens).pow(2).sum().backward()
    assert claims == [(30, 8)] and embedding.weight.grad.data_ptr() != slot.data_ptr()
    assert same_bits(embedding.weight.grad, native)


def test_a_session_copies_no_embedding_gradient_and_scores_the_same_bits(jail):
    data = build_track_data(get_track("single_ar"), max_steps=12)
    runs = {}
    for direct in (True, False):
        session = CandidateSession(jail, ADAMW_SUBMISSION, timeout_s=60, memory_mb=None, direct=direct)
        try:
            result = train(lambda params: RemoteOptimizer(params, session), data, steps=12,
                           before_evaluate=session.snapshot)
        finally:
            session.close()
        runs[direct] = (result, session.copied_bytes)
    namespace: dict = {}
    exec(ADAMW_SUBMISSION, namespace)  # noqa: S102 - the project's own reference optimizer
    here = train(namespace["Submission"], data, steps=12)
    model = data.make_student()
    readout_bytes = sum(p.numel() * p.element_size() for name, p in model.named_parameters() if "readout" in name)
    every_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    assert runs[True][1] == 12 * readout_bytes  # the three embedding tables went straight into the file
    assert runs[False][1] == 12 * every_bytes
    for result, _ in runs.values():
        assert [(p.metric, p.loss) for p in result.curve] == [(p.metric, p.loss) for p in here.curve]
        assert result.last_train_loss == here.last_train_loss


def test_the_noise_probe_reads_gradients_the_candidate_cannot_write(monkeypatch):
    """It shapes its noise from the gradients, so there they are computed privately and copied."""
    sessions = []
    close = CandidateSession.close

    def recording(session):
        sessions.append((session.direct, session.copied_bytes))
        close(session)

    monkeypatch.setattr(CandidateSession, "close", recording)
    threads = torch.get_num_threads()
    worker = Worker()
    try:
        for noise in (7, None):
            payload = worker.handle({"op": "eval", "source": ADAMW_SUBMISSION, "track": "single_ar", "steps": 5,
                                     "gradient_noise_seed": noise, "timeout_s": 60})
            assert payload.get("outcome", "ok") == "ok", payload
    finally:
        worker.close()
        torch.set_num_threads(threads)
    every_bytes = sum(p.numel() * p.element_size() for p in worker.track_data("single_ar", "benchmark", 5)
                      .make_student().parameters())
    assert sessions[0] == (False, 5 * every_bytes)
    assert sessions[1][0] and sessions[1][1] < every_bytes


def test_a_model_with_half_precision_parameters_keeps_the_native_kernel(jail):
    """aten sums bfloat16 tables in its own way: those gradients are computed natively and copied."""
    params = [nn.Parameter(torch.ones(6, 4)), nn.Parameter(torch.ones(6, 4, dtype=torch.bfloat16))]
    session = CandidateSession(jail, ADAMW_SUBMISSION, timeout_s=60, memory_mb=None)
    try:
        RemoteOptimizer(params, session)
        assert direct_grads._claim is None
    finally:
        session.close()
    session = CandidateSession(jail, ADAMW_SUBMISSION, timeout_s=60, memory_mb=None)
    try:
        RemoteOptimizer(params[:1], session)
        assert direct_grads._claim == session.claim
    finally:
        session.close()
    assert direct_grads._claim is None



def test_a_run_that_fails_leaves_no_gradient_in_the_file_and_unmaps_it(jail):
    embedding = nn.Embedding(30, 8)
    tokens = torch.randint(0, 30, (16, 5), generator=torch.Generator().manual_seed(1))
    session = CandidateSession(jail, CRASHES_AT_STEP_2, timeout_s=60, memory_mb=None)
    try:
        optimizer = RemoteOptimizer(embedding.parameters(), session)
        for step in (1, 2):
            optimizer.zero_grad()
            embedding(tokens).pow(2).sum().backward()
            assert embedding.weight.grad.data_ptr() == session.shared.grads[session.next_region][0].data_ptr()
            if step == 2:
                with pytest.raises(CandidateFailed, match="on purpose"):
                    optimizer.step()
            else:
                optimizer.step()
        shared = session.shared
    finally:
        session.close()
    assert embedding.weight.grad is None and shared.map.closed
