"""The compiler: compiled files compute what the plain transcription computes, and do it the fast way.

Exactness is `torch.equal` with NaNs equal (so -0.0 == 0.0): every rewrite but Newton-Schulz is exact.
Newton-Schulz (fused multiply-adds, Gram space) is checked against the plain iteration to a stated
tolerance, and the random-program check compiles it to the plain iteration (`fast_newton_schulz=False`).
"""

import random

import pytest
import torch

from evaluator.probe import run_probe
from primitives import kernels, ops
from primitives.compile import compile_program
from primitives.program import Program
from primitives.seeds import SEED_PROGRAMS, seed_programs

NEWTON_SCHULZ_TOLERANCE = 1e-4  # of the largest entry of the plain result
SHAPES = [(), (5,), (4, 3), (2, 9), (3, 2, 2), (2, 3, 2, 2)]


def load(source):
    namespace = {}
    exec(compile(source, "<submission>", "exec"), namespace)
    return namespace["Submission"]


def gradient(shape, seed):
    g = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    if g.ndim:  # rows with an exact zero gradient, as an embedding's unused rows have, of either sign
        g[0] = 0.0
        g[-1] = -0.0 if g.shape[0] > 1 else g[-1]
    return g


def run(source, steps=3):
    """Parameters of every rank after `steps` steps; the last parameter skips step 2, so its t lags."""
    params = [torch.nn.Parameter(torch.randn(s, generator=torch.Generator().manual_seed(i)))
              for i, s in enumerate(SHAPES)]
    optimizer = load(source)(params)
    for step in range(steps):
        for i, p in enumerate(params):
            p.grad = None if (step == 1 and i == len(params) - 1) else gradient(p.shape, 100 * step + i)
        optimizer.step()
    return params, optimizer


def assert_same(a, b):
    torch.testing.assert_close(a.detach(), b.detach(), rtol=0, atol=0, equal_nan=True)


def random_programs(n, seed):
    rng = random.Random(seed)
    return [Program.random(rng, 1, 5, slot_rate=0.7) for _ in range(n)]


@pytest.mark.parametrize("foreach", [False, True], ids=["per-tensor", "foreach"])
@pytest.mark.parametrize("seed", range(3))
def test_compiled_random_programs_match_the_plain_transcription_bit_for_bit(seed, foreach):
    """Both paths on the CPU (a file picks one by device; `foreach` keeps only one)."""
    for program in random_programs(60, seed):
        plain, _ = run(program.render_plain())
        compiled, _ = run(compile_program(program, fast_newton_schulz=False, foreach=foreach))
        for a, b in zip(plain, compiled):
            assert_same(a, b)


@pytest.mark.parametrize("name", sorted(SEED_PROGRAMS))
def test_compiled_seeds_match_the_plain_transcription(name):
    program = seed_programs()[name]
    plain, plain_opt = run(program.render_plain(), steps=5)
    compiled, compiled_opt = run(program.render(), steps=5)
    for p_plain, p_compiled in zip(plain, compiled):
        if "orthogonalize" in SEED_PROGRAMS[name]:
            assert (p_plain - p_compiled).abs().max() <= 1e-5 * max(1.0, p_plain.abs().max())
        else:
            assert_same(p_plain, p_compiled)
            assert compiled_opt.state[p_compiled].keys() == plain_opt.state[p_plain].keys()


@pytest.mark.parametrize("shape", [(64, 64), (4160, 64), (64, 4160), (384, 128), (100, 70), (8, 3, 3, 3), (7,)])
def test_fast_newton_schulz_is_within_its_stated_tolerance(shape):
    for scale in (1e-3, 1.0, 1e3):
        x = torch.randn(shape, generator=torch.Generator().manual_seed(len(shape))) * scale
        plain, fast = ops.orthogonalize(x), kernels.orthogonalize(x)
        assert fast.shape == plain.shape and fast.is_contiguous()
        assert (fast - plain).abs().max() <= NEWTON_SCHULZ_TOLERANCE * plain.abs().max(), (shape, scale)


def test_safe_div_is_the_div_primitive_on_every_kind_of_denominator():
    y = torch.tensor([0.0, -0.0, 1e-13, -1e-13, 1e-12, -1e-12, 2.0, -3.0, float("inf"), -float("inf"), float("nan")])
    x = torch.ones_like(y) * 3.0
    assert_same(kernels.safe_div(x, y), ops.div(x, y))


def test_slot_that_only_ever_holds_zero_is_dropped_with_what_it_feeds():
    text = ("s0 = ema(s0, g, 0.9)\ns1 = square(orthogonalize(s1))\ns2 = s2\n"
            "update = sub(scale(s0, -0.01), scale(square(orthogonalize(s1)), 0.5))")
    program = Program.from_text(text)
    source = program.render()
    body = source.split("class Submission")[1]
    assert "orthogonalize" not in body and '"s1"' not in body
    assert "s1 can only hold zero" in source
    plain, _ = run(program.render_plain())
    compiled, _ = run(source)
    for a, b in zip(plain, compiled):
        assert_same(a, b)
    # written from something non-zero, the same slot stays
    assert "orthogonalize(" in Program.from_text(text.replace("orthogonalize(s1)", "orthogonalize(add(s1, g))")).render()


def test_constants_fold_and_common_subexpressions_compute_once():
    text = ("s0 = ema(s0, g, beta_mul(0.99883, 0.895))\ns1 = s1\ns2 = s2\n"
            "update = add(scale(sqrt(absolute(s0)), -0.01), scale(sqrt(absolute(s0)), smul(0.5, -0.02)))")
    body = compile_program(Program.from_text(text), foreach=True).split("class Submission")[1]
    assert "beta_mul" not in body and "0.99883" not in body and "smul" not in body
    assert repr(1 - 0.99883 * 0.895) in body and repr(0.5 * -0.02) in body
    assert body.count("_foreach_abs") == 1 and body.count("sqrt") == 1


def test_elementwise_programs_update_slots_in_place_on_both_paths():
    body = seed_programs()["adamw"].render().split("def step")[1]
    assert "torch._foreach_lerp_(s0, grads, " in body
    assert "torch._foreach_mul_(s1, 0.99)" in body and "torch._foreach_addcmul_(s1, grads, grads" in body
    assert "s0.lerp_(g, (1 - 0.9))" in body and "s1.mul_(0.99).addcmul_(g, g, value=(1 - 0.99))" in body
    assert "safe_div" not in body and "abs" not in body  # the denominator is >= 1e-8, v >= 0
    assert "_foreach" not in compile_program(seed_programs()["adamw"], foreach=False)
    assert "for p, g, state in" not in compile_program(seed_programs()["adamw"], foreach=True)
    muon = seed_programs()["muon"].render().split("def step")[1]
    assert "_foreach" not in muon and "s0.lerp_(g, " in muon


def test_scalars_of_the_step_are_computed_once_per_step_and_tensor_scalars_never_sync():
    body = seed_programs()["adam"].render().split("def step")[1]
    loop = body.split("self.batches():")[1]
    assert loop.index("bias_correction(0.9, t)") < loop.index("_foreach")
    source = Program.from_text("s0 = s0\ns1 = s1\ns2 = s2\nupdate = scale(g, sneg(smul(frob_norm(g), 0.01)))").render()
    assert ".item()" not in source
    plain, _ = run(Program.from_text("s0 = s0\ns1 = s1\ns2 = s2\nupdate = scale(g, sneg(smul(frob_norm(g), 0.01)))").render_plain())
    compiled, _ = run(source)
    for a, b in zip(plain, compiled):
        assert_same(a, b)


def test_slots_never_share_storage_with_each_other_or_the_gradient():
    text = "s0 = ema(s2, g, 0.9)\ns1 = g\ns2 = ema(s2, g, 0.9)\nupdate = add(scale(add(s0, s1), -0.1), scale(s2, 0.01))"
    plain, _ = run(Program.from_text(text).render_plain())
    compiled, optimizer = run(Program.from_text(text).render())
    for a, b in zip(plain, compiled):
        assert_same(a, b)
    for p in compiled:
        state = optimizer.state[p]
        pointers = {state[s].data_ptr() for s in ("s0", "s1", "s2")} | {p.data_ptr()}
        assert len(pointers) == 4 or p.numel() == 0


@pytest.mark.parametrize("name", sorted(set(SEED_PROGRAMS) - {"muon"}))
def test_probe_fingerprints_are_those_of_the_plain_transcription(name):
    program = seed_programs()[name]
    assert run_probe(load(program.render())).fingerprint == run_probe(load(program.render_plain())).fingerprint


def test_kernels_are_self_contained_like_the_primitives():
    """Compiled files copy these helpers verbatim, so they may use only torch, math and builtins."""
    import builtins
    import inspect

    for name, fn in inspect.getmembers(kernels, inspect.isfunction):
        free = set(fn.__code__.co_names) - {"torch", "math"} - set(dir(builtins))
        attrs = {"abs", "clamp_", "copysign_", "norm", "double", "sum", "ndim", "reshape", "shape", "T", "addmm",
                 "eye", "dtype", "device", "contiguous"}
        assert free <= attrs, (name, free - attrs)


def test_compiled_kron_preconditioner_matches_the_plain_transcription_on_every_rank():
    """Shampoo's statistic and inverse root (per-parameter helpers, eigh) compile to the same numbers."""
    program = Program.from_text("s0 = ema(s0, g, 0.9)\ns1 = kron_stat(s1, g, 0.95)\ns2 = s2\n"
                                "update = scale(kron_precond(s0, s1, 1e-06), -0.05)")
    source = compile_program(program)
    assert "kron_precond(" in source and "_foreach_" not in source  # a loop over parameters, not foreach
    plain, _ = run(program.render_plain(), steps=4)
    compiled, _ = run(source, steps=4)
    for a, b in zip(plain, compiled):
        assert_same(a, b)
    assert all(torch.isfinite(p).all() for p in compiled)


def test_every_generated_file_shares_the_one_submission_class_skeleton():
    """The plain transcription, the compiled file and each baseline optimizer that writes its own step
    all take `__init__` and the closure handling from primitives/submission.py, and pass the policy."""
    from evaluator.policy import check_source
    from primitives.submission import STEP
    from synth.baseline.optimizers import render

    program = seed_programs()["adam"]
    lion = render("lion", {"lr": 1e-3, "beta1": 0.9, "beta2": 0.99, "weight_decay": 0.0})
    muon = render("muon", {"lr": 0.02, "momentum": 0.95, "adam_lr": 1e-3, "weight_decay": 0.0})
    for source in (program.render_plain(), compile_program(program), lion, muon):
        assert source.count(STEP) == 1 and source.count("class Submission(") == 1
        assert "        return loss\n" in source.split(STEP)[1]
        assert check_source(source) == []
