"""Known optimizers written in the program language: the starting population.

The first five reproduce `torch.optim` with the hyperparameters named in each comment (tests check
that they score the same on the benchmark). Slots unused by a seed read `sK = sK`.
"""

from __future__ import annotations

from primitives.program import Program

SEED_PROGRAMS: dict[str, str] = {
    # torch.optim.SGD(lr=0.1, momentum=0.9): buf = 0.9 * buf + g; p -= 0.1 * buf
    "sgd_momentum": """\
s0 = add(scale(s0, 0.9), g)
s1 = s1
s2 = s2
update = scale(s0, -0.1)""",
    # torch.optim.Adam(lr=1e-3)
    "adam": """\
s0 = ema(s0, g, 0.9)
s1 = ema_sq(s1, g, 0.999)
s2 = s2
update = scale(div(debias(s0, 0.9, t), add_eps(sqrt(debias(s1, 0.999, t)), 1e-08)), -0.001)""",
    # torch.optim.AdamW(lr=1e-2, betas=(0.9, 0.99), weight_decay=0)
    "adamw": """\
s0 = ema(s0, g, 0.9)
s1 = ema_sq(s1, g, 0.99)
s2 = s2
update = scale(div(debias(s0, 0.9, t), add_eps(sqrt(debias(s1, 0.99, t)), 1e-08)), -0.01)""",
    # torch.optim.AdamW(lr=1e-2, betas=(0.9, 0.99), weight_decay=0.1): p -= lr * wd * p, then Adam
    "adamw_decay": """\
s0 = ema(s0, g, 0.9)
s1 = ema_sq(s1, g, 0.99)
s2 = s2
update = sub(scale(div(debias(s0, 0.9, t), add_eps(sqrt(debias(s1, 0.99, t)), 1e-08)), -0.01), scale(p, 0.001))""",
    # torch.optim.RMSprop(lr=0.01): alpha 0.99, eps 1e-8
    "rmsprop": """\
s0 = ema_sq(s0, g, 0.99)
s1 = s1
s2 = s2
update = scale(div(g, add_eps(sqrt(s0), 1e-08)), -0.01)""",
    # torch.optim.Adagrad(lr=0.01): eps 1e-10
    "adagrad": """\
s0 = add(s0, square(g))
s1 = s1
s2 = s2
update = scale(div(g, add_eps(sqrt(s0), 1e-10)), -0.01)""",
    # Lion (Chen et al. 2023), lr 0.01, betas (0.9, 0.99): s0 = the interpolation the sign is taken of,
    # computed from s1's old value (the momentum), which is updated after it.
    "lion": """\
s0 = ema(s1, g, 0.9)
s1 = ema(s1, g, 0.99)
s2 = s2
update = scale(sign(s0), -0.01)""",
    # Muon (Jordan et al. 2024): Nesterov momentum 0.95, orthogonalised, scaled by sqrt(max(1, rows/cols)), lr 0.02.
    "muon": """\
s0 = ema(s0, g, 0.95)
s1 = s1
s2 = s2
update = scale(orthogonalize(lerp(g, s0, 0.95)), smul(shape_scale(g), -0.02))""",
    # Adafactor-like (Shazeer & Stern 2018): EMA of the factored (rank-1) estimate of g**2, lr 0.01.
    "adafactor_like": """\
s0 = ema(s0, factored_sq(g), 0.999)
s1 = s1
s2 = s2
update = scale(div(g, add_eps(sqrt(debias(s0, 0.999, t)), 1e-08)), -0.01)""",
    # A general seed, made by hand for multi-track runs: Adam (betas 0.54, 0.81, the tuned single_ar AdamW's),
    # lr 0.015 scaled per matrix by Muon's shape factor (8x on the recall tracks' 4160x64 embeddings, 1-1.7x on
    # random_teacher's projections), under a warmup-stable-decay schedule that anneals over the last 100 steps.
    # single_ar pass @ 350, mqar pass @ 150, random_teacher MSE 7.6 (AdamW: fail, fail, 58.3); see README.
    "adamw_wsd": """\
s0 = ema(s0, g, 0.54)
s1 = ema_sq(s1, g, 0.81)
s2 = s2
update = scale(div(debias(s0, 0.54, t), add_eps(sqrt(debias(s1, 0.81, t)), 1e-08)), smul(smul(shape_scale(g), wsd_decay(t)), -0.015))""",
}


# Seeds a run starts from only when its config names them (`seeds = ["shampoo", "adamw"]`), so the default
# population, and every run and figure made from it, stays as it was.
OPT_IN_SEEDS: dict[str, str] = {
    # One-sided Shampoo with momentum 0.9: the short side's Gram EMA (beta 0.95), its inverse square root
    # by eigh (damping 1e-6 of the top eigenvalue), Adam's diagonal on vectors; lr 0.5 with cosine decay
    # over 400 steps. random_teacher final MSE 10.04 on the benchmark seeds (AdamW 58.30), held-out mean
    # 10.15 over heldout-1..3; see README.
    "shampoo": """\
s0 = ema(s0, g, 0.9)
s1 = kron_stat(s1, g, 0.95)
s2 = s2
update = scale(kron_precond(s0, s1, 1e-06), smul(cosine_decay(t), -0.5))""",
}


def seed_programs(opt_in: bool = False) -> dict[str, Program]:
    """Every default seed, parsed; with `opt_in`, the opt-in seeds as well (for a config that names seeds)."""
    texts = {**SEED_PROGRAMS, **(OPT_IN_SEEDS if opt_in else {})}
    return {name: Program.from_text(text) for name, text in texts.items()}
