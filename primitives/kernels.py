"""Helpers that compiled files (primitives/compile.py) use in place of, or next to, primitives/ops.py.

Like ops.py, each function is copied verbatim into the files it serves, so it may use only torch,
math and builtins. Each computes what the primitive it serves computes: `safe_div`,
`bias_correction`, `frob_norm` and `cos_sim` bit for bit; `orthogonalize` to about 1e-5 of its
largest entry (tests/test_compile.py states and checks the tolerance).
"""

import math

import torch


def safe_div(x, y):
    """Protected x / y, as the div primitive: exact wherever |y| >= 1e-12, else divides by +-1e-12 (+ for 0).

    Three cheap passes instead of two `where`s; `y + 0.0` turns -0.0 into +0.0, whose sign div gives 0.
    """
    return x / y.abs().clamp_(min=1e-12).copysign_(y + 0.0)


def bias_correction(beta, t):
    """Adam's bias-correction divisor 1 - beta**t (t clamped to >= 1), floored at 1e-12: debias(x) = x / this."""
    correction = 1 - beta ** max(t, 1)
    return correction if correction > 1e-12 else 1e-12


def frob_norm(x):
    """Frobenius (L2) norm of the whole tensor, as a 0-d float64 tensor: the same number, no host sync."""
    return x.norm().double()


def cos_sim(a, b):
    """Cosine similarity of two tensors seen as flat vectors, as a 0-d float64 tensor (no host sync)."""
    return ((a * b).sum() / (a.norm() * b.norm() + 1e-12)).double()


def orthogonalize(x):
    """Muon's quintic Newton-Schulz (5 steps) with fused multiply-adds; for a matrix whose long side is at
    least twice its short side, in the short side's Gram space: each step y <- (a + bG + cG^2) y is
    tracked as y = q y0 with G = q (y0 y0^T) q^T, so the long side is read twice, not ten times, and
    only the result is allocated at full size.
    """
    if x.ndim < 2:
        return x / (x.norm() + 1e-7)
    a, b, c = 3.4445, -4.7750, 2.0315
    m = x.reshape(x.shape[0], -1)
    inv_norm = 1 / (m.norm() + 1e-7)
    short, long = sorted(m.shape)
    if 2 * short > long:
        y = m * inv_norm
        tall = y.shape[0] > y.shape[1]
        if tall:
            y = y.T
        for _ in range(5):
            gram = y @ y.T
            y = torch.addmm(y, torch.addmm(gram, gram, gram, beta=b, alpha=c), y, beta=a)
        return (y.T if tall else y).reshape(x.shape).contiguous()
    tall = m.shape[0] > m.shape[1]
    gram0 = (m.T @ m if tall else m @ m.T) * (inv_norm * inv_norm)
    q = torch.eye(short, dtype=m.dtype, device=m.device)
    gram = gram0
    for step in range(5):
        if step:
            gram = q @ gram0 @ q.T
        q = torch.addmm(q, torch.addmm(gram, gram, gram, beta=b, alpha=c), q, beta=a)
    q = q * inv_norm
    return (m @ q.T if tall else q @ m).reshape(x.shape)
