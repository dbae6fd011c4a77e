"""The math of the update-rule language: one small torch function per primitive.

Every function here is copied verbatim into rendered Submission files (`Program.render`), so each
one must be self-contained: it may use only `torch`, `math` and Python builtins, never another
function of this module or a module-level constant. Every primitive is total: whatever finite or
non-finite input it gets, it returns a value (a NaN at worst) and never raises, so a random program
cannot crash a run, only score badly.

Types: a *tensor* is shaped like the parameter; a *scalar* is a plain Python number (the step
count `t`, constants, norms via `.item()`); a *beta* is a decay rate in (0, 1); an *eps* is a small
positive floor. Tensor functions always return a fresh tensor, never one of their inputs, so a
state slot never aliases the gradient or the parameter.
"""

import math

import torch

# ---------------------------------------------------------------- tensor arithmetic


def add(x, y):
    """Elementwise x + y."""
    return x + y


def sub(x, y):
    """Elementwise x - y."""
    return x - y


def mul(x, y):
    """Elementwise x * y."""
    return x * y


def div(x, y):
    """Protected x / y: exact wherever |y| >= 1e-12, else divides by +-1e-12 (sign of y, + for 0)."""
    tiny = torch.where(y < 0, -1e-12, 1e-12)
    return x / torch.where(y.abs() < 1e-12, tiny, y)


def neg(x):
    """Elementwise -x."""
    return -x


def absolute(x):
    """Elementwise |x|."""
    return x.abs()


def sign(x):
    """Elementwise sign, 0 at 0: the heart of signSGD and Lion."""
    return torch.sign(x)


def square(x):
    """Elementwise x ** 2."""
    return x * x


def sqrt(x):
    """Protected square root sqrt(|x|)."""
    return x.abs().sqrt()


def rsqrt(x, eps):
    """Protected inverse square root 1 / sqrt(|x| + eps)."""
    return torch.rsqrt(x.abs() + eps)


def exp(x):
    """Protected exp: the input is clamped at 20 so the result stays finite."""
    return torch.exp(x.clamp(max=20.0))


def log(x):
    """Protected log(|x| + 1e-12)."""
    return torch.log(x.abs() + 1e-12)


def tanh(x):
    """Elementwise tanh: a soft clip to (-1, 1)."""
    return torch.tanh(x)


def clip(x, c):
    """Clamps x into [-|c|, |c|]."""
    c = abs(c)
    return x.clamp(-c, c)


def maximum(x, y):
    """Elementwise max(x, y)."""
    return torch.maximum(x, y)


def minimum(x, y):
    """Elementwise min(x, y)."""
    return torch.minimum(x, y)


def scale(x, s):
    """x times a scalar: learning rates, decays and schedules enter the update here."""
    return x * s


def add_eps(x, eps):
    """x + eps: the floor that keeps Adam's denominator away from zero."""
    return x + eps


# ---------------------------------------------------------------- moments and corrections


def lerp(a, b, w):
    """a + w * (b - a) (torch.lerp): interpolate between two tensors."""
    return torch.lerp(a, b, w)


def ema(m, x, beta):
    """First-moment EMA beta * m + (1 - beta) * x, exactly as torch's Adam updates exp_avg."""
    return torch.lerp(m, x, 1 - beta)


def ema_sq(v, x, beta):
    """Second-moment EMA beta * v + (1 - beta) * x**2, exactly as torch's Adam updates exp_avg_sq."""
    return torch.addcmul(v * beta, x, x, value=1 - beta)


def debias(x, beta, t):
    """Adam's bias correction x / (1 - beta**t); t is clamped to >= 1 so it never divides by zero."""
    correction = 1 - beta ** max(t, 1)
    return x / (correction if correction > 1e-12 else 1e-12)


# ---------------------------------------------------------------- normalisation and geometry


def rms_norm(x):
    """x divided by its root-mean-square over the whole tensor."""
    return x / (x.square().mean().sqrt() + 1e-12)


def row_rms_norm(x):
    """x divided by the root-mean-square of each row (a 1-D tensor is one row)."""
    return x / (x.square().mean(dim=-1, keepdim=True).sqrt() + 1e-12)


def frob_norm(x):
    """Frobenius (L2) norm of the whole tensor, as a scalar."""
    return x.norm().item()


def cos_sim(a, b):
    """Cosine similarity of two tensors seen as flat vectors, as a scalar."""
    return ((a * b).sum() / (a.norm() * b.norm() + 1e-12)).item()


def addsign_gain(a, b):
    """AddSign gain 1 + sign(a) * sign(b): 2 where a and b agree, 0 where they disagree."""
    return 1 + torch.sign(a) * torch.sign(b)


def powersign_gain(a, b):
    """PowerSign gain exp(sign(a) * sign(b)): e where a and b agree, 1/e where they disagree."""
    return torch.exp(torch.sign(a) * torch.sign(b))


def orthogonalize(x):
    """Muon's quintic Newton-Schulz (5 steps): the nearest semi-orthogonal matrix to x, roughly.

    A 0-d or 1-D tensor is treated as a 1 x n matrix, whose orthogonalisation is x / ||x||; a tensor
    of 3 or more dimensions (a conv kernel) as the matrix shape[0] x (the rest), as Muon does.
    """
    if x.ndim < 2:
        return x / (x.norm() + 1e-7)
    a, b, c = 3.4445, -4.7750, 2.0315
    y = x.reshape(x.shape[0], -1)
    y = y / (y.norm() + 1e-7)
    tall = y.shape[0] > y.shape[1]
    if tall:
        y = y.T
    for _ in range(5):
        gram = y @ y.T
        y = a * y + (b * gram + c * gram @ gram) @ y
    return (y.T if tall else y).reshape(x.shape).contiguous()


def shape_scale(x):
    """Muon's shape scale sqrt(max(1, rows / cols)) as a scalar (1 for a 1-D tensor)."""
    if x.ndim < 2:
        return 1.0
    return max(1.0, x.shape[0] / x.shape[1]) ** 0.5


def factored_sq(x):
    """Adafactor's rank-1 estimate of x**2: outer(row means, col means) / mean (x**2 itself below 2-D).

    A tensor of 3 or more dimensions is factored as the matrix shape[0] x (the rest).
    """
    x2 = x * x
    if x2.ndim < 2:
        return x2
    m = x2.reshape(x2.shape[0], -1)
    return (torch.outer(m.mean(dim=1), m.mean(dim=0)) / (m.mean() + 1e-30)).reshape(x.shape)


def kron_stat(s, x, beta):
    """Shampoo's one-sided statistic kept in a slot: beta * S + (1 - beta) * Gram(x) on the short side.

    A matrix m x n (3 or more dimensions: shape[0] x the rest) whose short side k is at most 1024
    keeps its k x k Gram (x^T x when m >= n, else x x^T) in the slot's leading k x k block, the rest
    of the slot zero: one k x k product, cheap on the recall tracks' 4160 x 64 embeddings (k = 64).
    A vector, a scalar, an empty tensor or a matrix with both sides above 1024 keeps Adam's diagonal
    EMA of x**2 instead (as ema_sq).
    """
    rows = x.shape[0] if x.ndim >= 2 else 0
    cols = x.numel() // rows if rows else 0
    if x.ndim < 2 or x.numel() == 0 or min(rows, cols) > 1024:
        return torch.addcmul(s * beta, x, x, value=1 - beta)
    m = x.reshape(rows, cols)
    k = min(rows, cols)
    gram = m.T @ m if rows >= cols else m @ m.T
    out = torch.zeros_like(m)
    out[:k, :k] = s.reshape(rows, cols)[:k, :k] * beta + gram * (1 - beta)
    return out.reshape(x.shape)


def kron_precond(x, s, eps):
    """Shampoo's one-sided preconditioning by a kron_stat slot: x times (S + damping)^(-1/2) on x's short
    side, by torch.linalg.eigh in float64, the damping eps times S's largest eigenvalue (eps is relative).

    With no curvature yet (S zero) x comes back unchanged; where kron_stat keeps the diagonal, this is
    x / sqrt(|s| + eps). A statistic that is not finite gives NaN, never an error.
    """
    rows = x.shape[0] if x.ndim >= 2 else 0
    cols = x.numel() // rows if rows else 0
    if x.ndim < 2 or x.numel() == 0 or min(rows, cols) > 1024:
        return x / (s.abs() + eps).sqrt()
    m = x.reshape(rows, cols)
    k = min(rows, cols)
    stat = s.reshape(rows, cols)[:k, :k].double()
    if not bool(torch.isfinite(stat).all()):
        return torch.full_like(x, math.nan)
    try:
        vals, vecs = torch.linalg.eigh((stat + stat.T) / 2)
    except RuntimeError:
        return torch.full_like(x, math.nan)
    vals = vals.abs()
    top = float(vals.max())
    if top == 0.0:
        return x.clone()
    root = ((vecs * (vals + eps * top).rsqrt()) @ vecs.T).to(x.dtype)
    return (m @ root if rows >= cols else root @ m).reshape(x.shape)


# ---------------------------------------------------------------- schedules of the step count t


def linear_decay(t, horizon=400):
    """Linear decay 1 - t / horizon, clamped at 0."""
    return max(0.0, 1 - t / horizon)


def cosine_decay(t, horizon=400):
    """Cosine decay 0.5 * (1 + cos(pi * t / horizon)), t clamped into [0, horizon]."""
    return 0.5 * (1 + math.cos(math.pi * min(max(t, 0.0), horizon) / horizon))


def wsd_decay(t, horizon=400, tail=0.25):
    """Warmup-stable-decay's tail (Hu et al. 2024, MiniCPM): 1 until the last `tail` of the horizon, then
    linear to 0. The rate stays whole while the recall tracks are still learning and anneals before the
    final evaluation, which random_teacher's MSE rewards most (see README, "One optimizer for every track")."""
    return min(1.0, max(0.0, (horizon - t) / (tail * horizon)))


def warmup(t, length=40):
    """Linear warmup min(1, t / length)."""
    return min(1.0, t / length)


# ---------------------------------------------------------------- scalar arithmetic


def sadd(a, b):
    """Scalar a + b."""
    return a + b


def ssub(a, b):
    """Scalar a - b."""
    return a - b


def smul(a, b):
    """Scalar a * b."""
    return a * b


def sdiv(a, b):
    """Protected scalar a / b: exact wherever |b| >= 1e-12."""
    return a / b if abs(b) >= 1e-12 else a / (-1e-12 if b < 0 else 1e-12)


def sneg(a):
    """Scalar -a."""
    return -a


def ssqrt(a):
    """Protected scalar square root sqrt(|a|)."""
    return abs(a) ** 0.5


def complement(beta):
    """1 - beta: the weight a decay rate gives to the newest value."""
    return 1 - beta


def beta_mul(a, b):
    """Product of two decay rates: a shorter memory, still in (0, 1)."""
    return a * b


def eps_mul(a, b):
    """Product of two floors: a smaller floor, still positive."""
    return a * b
