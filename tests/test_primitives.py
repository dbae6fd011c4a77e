"""The primitives: each op is total, shape-preserving where it should be, and exact where it claims to be."""

import builtins
import inspect
import math
import random

import pytest
import torch
from deap import gp

from primitives import ops
from primitives.pset import (CONSTANT_TYPES, SIGNATURES, Beta, Eps, Scalar, Tensor, build_pset, is_constant,
                             make_constant, using_rng)

SHAPES = [(4160, 64), (64, 64), (64,), (384, 128), (384,), (128, 128), (128,), (3, 7)]


def sample(shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def call(name, *tensors):
    """Calls primitive `name` with the tensors given and typical values for its other arguments."""
    args_types, _ = SIGNATURES[name]
    tensors = list(tensors)
    defaults = {Scalar: 0.5, Beta: 0.9, Eps: 1e-8}
    return getattr(ops, name)(*[tensors.pop(0) if t is Tensor else defaults[t] for t in args_types])


def test_every_signature_has_a_documented_function_and_back():
    functions = {n for n, f in inspect.getmembers(ops, inspect.isfunction) if f.__module__ == ops.__name__}
    assert functions == set(SIGNATURES)
    for name in functions:
        assert getattr(ops, name).__doc__, name


def test_ops_use_only_torch_math_and_builtins():
    """Rendered files copy these functions verbatim, so they may not lean on each other or on globals."""
    allowed = {"torch", "math"} | set(dir(builtins))
    for name in SIGNATURES:
        fn = getattr(ops, name)
        free = set(fn.__code__.co_names) - allowed
        attrs = {"abs", "sqrt", "clamp", "exp", "log", "rsqrt", "where", "sign", "tanh", "maximum", "minimum",
                 "lerp", "addcmul", "square", "mean", "norm", "item", "ndim", "shape", "T", "outer", "cos", "pi",
                 "sum", "contiguous", "reshape",
                 # kron_stat / kron_precond: Shampoo's Gram statistic and its inverse root by eigh
                 "numel", "zeros_like", "full_like", "nan", "double", "isfinite", "all", "linalg", "eigh", "max",
                 "to", "dtype", "clone"}
        assert free <= attrs, (name, free - attrs)


@pytest.mark.parametrize("shape", SHAPES)
def test_tensor_ops_keep_shape_and_return_fresh_tensors(shape):
    x, y = sample(shape, 1), sample(shape, 2)
    for name, (args, ret) in SIGNATURES.items():
        if Tensor not in args:
            continue
        out = call(name, x, y, x)
        if ret is Tensor:
            assert out.shape == x.shape and out.dtype == torch.float32, name
            assert out is not x and out is not y, name
            assert torch.isfinite(out).all(), name
        else:
            assert isinstance(out, float) and math.isfinite(out), name


@pytest.mark.parametrize("fill", [0.0, float("nan"), float("inf"), -float("inf"), 1e30, -1e-30])
def test_every_primitive_is_total(fill):
    """No input makes a primitive raise: a random program can only score badly, never crash."""
    x = torch.full((5, 3), fill)
    for name, (args, ret) in SIGNATURES.items():
        if Tensor in args:
            call(name, x, x, x)
        scalar_args = [fill if t is Scalar else (0.5 if t is Beta else 1e-8) for t in args if t is not Tensor]
        if Tensor not in args:
            getattr(ops, name)(*scalar_args)
    for name in ("sadd", "ssub", "smul", "sdiv"):
        getattr(ops, name)(fill, 0.0)
        getattr(ops, name)(1.0, fill)


@pytest.mark.parametrize("shape", [(), (5,), (4, 3), (4, 3, 2), (3, 2, 2, 2)], ids=lambda s: f"{len(s)}d")
def test_every_primitive_is_total_on_tensors_of_any_rank(shape):
    """An exported optimizer meets scalars, vectors, matrices and conv kernels: no primitive may raise on one."""
    x, y = sample(shape, 1), sample(shape, 2)
    for name, (args, ret) in SIGNATURES.items():
        if Tensor not in args:
            continue
        out = call(name, x, y, x)
        if ret is Tensor:
            assert out.shape == x.shape and torch.isfinite(out).all(), name
        else:
            assert math.isfinite(out), name


def test_conv_kernels_are_orthogonalised_and_factored_as_flattened_matrices():
    kernel = sample((8, 3, 3, 3), 3)
    flat = kernel.reshape(8, -1)
    assert torch.equal(ops.orthogonalize(kernel), ops.orthogonalize(flat).reshape(kernel.shape))
    assert torch.equal(ops.factored_sq(kernel), ops.factored_sq(flat).reshape(kernel.shape))
    s = torch.linalg.svdvals(ops.orthogonalize(kernel).reshape(8, -1))
    assert s.min() > 0.5 and s.max() < 1.3


def test_div_is_exact_away_from_zero_and_finite_at_zero():
    x, y = sample((64, 64), 1), sample((64, 64), 2)
    assert torch.equal(ops.div(x, y), x / y)
    out = ops.div(x, torch.zeros_like(y))
    assert torch.isfinite(out).all()
    assert torch.equal(ops.div(torch.ones(2), torch.tensor([-1e-20, 1e-20])), torch.tensor([-1e12, 1e12]))
    assert ops.sdiv(3.0, 2.0) == 1.5 and math.isfinite(ops.sdiv(1.0, 0.0))


def test_moments_match_torch_adam_bit_for_bit():
    p = torch.nn.Parameter(sample((64, 64), 3))
    opt = torch.optim.Adam([p], lr=1e-3)
    m = torch.zeros_like(p)
    v = torch.zeros_like(p)
    for step in range(3):
        g = sample((64, 64), 10 + step)
        p.grad = g.clone()
        opt.step()
        m, v = ops.ema(m, g, 0.9), ops.ema_sq(v, g, 0.999)
        assert torch.equal(m, opt.state[p]["exp_avg"]) and torch.equal(v, opt.state[p]["exp_avg_sq"])
    assert torch.allclose(ops.debias(m, 0.9, 3), m / (1 - 0.9 ** 3))


def test_orthogonalize_gives_near_orthogonal_matrices_and_unit_vectors():
    for shape in [(64, 64), (384, 128), (128, 384), (4160, 64)]:
        s = torch.linalg.svdvals(ops.orthogonalize(sample(shape, 4)))
        assert s.min() > 0.5 and s.max() < 1.3, (shape, s.min(), s.max())
    v = sample((128,), 5)
    assert torch.allclose(ops.orthogonalize(v), v / v.norm(), atol=1e-6)
    assert ops.shape_scale(sample((4160, 64))) == 65 ** 0.5
    assert ops.shape_scale(sample((64, 128))) == 1.0 and ops.shape_scale(sample((64,))) == 1.0


def test_factored_sq_is_rank_one_and_keeps_row_and_column_means():
    x = sample((384, 128), 6)
    f = ops.factored_sq(x)
    assert torch.linalg.matrix_rank(f) == 1
    assert torch.allclose(f.mean(dim=1), (x * x).mean(dim=1), rtol=1e-4)
    assert torch.allclose(f.mean(dim=0), (x * x).mean(dim=0), rtol=1e-4)
    assert torch.equal(ops.factored_sq(x[0]), x[0] * x[0])


def test_kron_stat_keeps_the_short_side_gram_in_the_slot_and_the_diagonal_elsewhere():
    for shape, side in (((384, 128), "cols"), ((64, 200), "rows"), ((4160, 64), "cols"), ((8, 3, 4), "rows")):
        x = sample(shape, 7)
        m = x.reshape(shape[0], -1)
        gram = m.T @ m if side == "cols" else m @ m.T
        k = gram.shape[0]
        state = ops.kron_stat(torch.zeros(shape), x, 0.9)
        block = state.reshape(m.shape)[:k, :k]
        assert state.shape == x.shape and torch.allclose(block, 0.1 * gram, rtol=1e-5, atol=1e-5)
        rest = state.reshape(m.shape).clone()
        rest[:k, :k] = 0
        assert not rest.any()  # the rest of the slot stays zero
        again = ops.kron_stat(state, x, 0.5)
        assert torch.allclose(again.reshape(m.shape)[:k, :k], 0.05 * gram + 0.5 * gram, rtol=1e-5, atol=1e-4)
    for shape in ((128,), (), (1100, 1030)):  # a vector, a scalar, both sides above 1024: Adam's diagonal
        x, v = sample(shape, 8), sample(shape, 9).abs()
        assert torch.equal(ops.kron_stat(v, x, 0.9), ops.ema_sq(v, x, 0.9))


def test_kron_precond_whitens_the_short_side_and_is_total():
    x = sample((384, 128), 10)
    stat = ops.kron_stat(torch.zeros_like(x), x, 1e-9)  # (almost) this gradient's own Gram: Shampoo = polar factor
    o = ops.kron_precond(x, stat, 1e-10).double()
    assert torch.allclose(o.T @ o, torch.eye(128, dtype=torch.float64), atol=1e-3)  # semi-orthogonal
    wide = sample((64, 200), 11)
    o = ops.kron_precond(wide, ops.kron_stat(torch.zeros_like(wide), wide, 0.0), 1e-10).double()
    assert torch.allclose(o @ o.T, torch.eye(64, dtype=torch.float64), atol=1e-3)
    assert torch.equal(ops.kron_precond(x, torch.zeros_like(x), 1e-8), x)  # no curvature yet: x unchanged
    assert ops.kron_precond(x, torch.full_like(x, math.nan), 1e-8).isnan().all()  # NaN, never an error
    v, s = sample((128,), 12), sample((128,), 13).abs()
    assert torch.equal(ops.kron_precond(v, s, 1e-8), v / (s + 1e-8).sqrt())


def test_norms_gains_and_schedules():
    x = sample((64, 64), 7)
    assert math.isclose(ops.rms_norm(x).square().mean().item(), 1.0, rel_tol=1e-5)
    assert torch.allclose(ops.row_rms_norm(x).square().mean(dim=1), torch.ones(64), rtol=1e-5)
    assert math.isclose(ops.frob_norm(x), x.norm().item())
    assert math.isclose(ops.cos_sim(x, x), 1.0, rel_tol=1e-6) and math.isclose(ops.cos_sim(x, -x), -1.0, rel_tol=1e-6)
    a, b = torch.tensor([1.0, -1.0, 2.0]), torch.tensor([3.0, 2.0, 0.0])
    assert torch.equal(ops.addsign_gain(a, b), torch.tensor([2.0, 0.0, 1.0]))
    assert torch.allclose(ops.powersign_gain(a, b), torch.tensor([math.e, 1 / math.e, 1.0]))
    assert torch.equal(ops.clip(torch.tensor([-5.0, 0.5, 5.0]), -1.0), torch.tensor([-1.0, 0.5, 1.0]))
    assert ops.linear_decay(100) == 0.75 and ops.linear_decay(800) == 0.0
    assert ops.cosine_decay(0) == 1.0 and abs(ops.cosine_decay(400)) < 1e-12 and ops.cosine_decay(1000) == ops.cosine_decay(400)
    assert ops.warmup(20) == 0.5 and ops.warmup(400) == 1.0
    assert ops.wsd_decay(1) == 1.0 and ops.wsd_decay(300) == 1.0 and ops.wsd_decay(350) == 0.5
    assert ops.wsd_decay(400) == 0.0 and ops.wsd_decay(1000) == 0.0


def test_every_type_has_a_primitive_and_a_terminal():
    pset = build_pset()
    for type_ in (Tensor, Scalar, Beta, Eps):
        assert pset.primitives[type_], type_
        assert pset.terminals[type_], type_


@pytest.mark.parametrize("generate", [gp.genGrow, gp.genFull, gp.genHalfAndHalf])
def test_generators_never_get_stuck(generate):
    pset = build_pset()
    rng = random.Random(0)
    made = 0
    with using_rng(rng):
        for type_ in (Tensor, Scalar, Beta, Eps):
            for min_depth in range(1, 7):
                for max_depth in range(min_depth, 7):
                    for _ in range(12):
                        tree = gp.PrimitiveTree(generate(pset, min_depth, max_depth, type_=type_))
                        assert tree.root.ret is type_ and tree.height <= max_depth
                        made += 1
    assert made >= 1000


def test_constants_are_typed_and_using_rng_is_deterministic_and_restores_random():
    for type_ in CONSTANT_TYPES:
        node = make_constant(type_, 0.25)
        assert is_constant(node) and node.ret is type_ and node.format() == "0.25"
    random.seed(123)
    expected_global = random.random()
    random.seed(123)
    draws = []
    for _ in range(2):
        rng = random.Random(7)
        with using_rng(rng):
            first = random.random()
        draws.append((first, rng.random()))
    assert draws[0] == draws[1] and draws[0][0] != draws[0][1]
    assert random.random() == expected_global
