"""The standard optimizers `synth baseline` tunes: each one's search space and its Submission file.

A trial is a standalone Submission file with the hyperparameters written into it, so a baseline
trial is scored, exported and re-scored exactly like an evolved candidate. AdamW, Adam, SGD and
RMSprop subclass `torch.optim`; torch has no Lion, and its Muon takes only matrices, so those two
are written out here (Muon: Newton-Schulz on every tensor of two or more dimensions, AdamW on the rest).

Decay rates are searched as `1 - beta` on a log scale, so 0.9, 0.99 and 0.999 are equally easy to reach.
"""

from __future__ import annotations

from dataclasses import dataclass

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution

from primitives.submission import submission_class


@dataclass(frozen=True)
class Knob:
    """One searched number; `complement` knobs are searched as 1 - value."""

    name: str
    low: float
    high: float
    log: bool = True
    complement: bool = False

    def distribution(self) -> BaseDistribution:
        return FloatDistribution(self.low, self.high, log=self.log)

    @property
    def search_name(self) -> str:
        return f"one_minus_{self.name}" if self.complement else self.name

    def value(self, searched: float) -> float:
        return 1.0 - searched if self.complement else searched


LR = {"adamw": (1e-4, 0.3), "adam": (1e-4, 0.3), "sgd": (1e-3, 10.0), "rmsprop": (1e-5, 0.1),
      "lion": (1e-5, 0.03), "muon": (1e-3, 1.0)}

SPACES: dict[str, tuple[Knob, ...]] = {
    "adamw": (Knob("lr", *LR["adamw"]), Knob("beta1", 1e-3, 0.5, complement=True),
              Knob("beta2", 1e-4, 0.2, complement=True), Knob("eps", 1e-12, 1e-3), Knob("weight_decay", 1e-6, 1.0)),
    "adam": (Knob("lr", *LR["adam"]), Knob("beta1", 1e-3, 0.5, complement=True),
             Knob("beta2", 1e-4, 0.2, complement=True), Knob("eps", 1e-12, 1e-3)),
    "sgd": (Knob("lr", *LR["sgd"]), Knob("momentum", 1e-3, 1.0, complement=True), Knob("weight_decay", 1e-6, 0.1)),
    "rmsprop": (Knob("lr", *LR["rmsprop"]), Knob("alpha", 1e-4, 0.5, complement=True), Knob("eps", 1e-12, 1e-3),
                Knob("momentum", 0.0, 0.99, log=False)),
    "lion": (Knob("lr", *LR["lion"]), Knob("beta1", 1e-3, 0.5, complement=True),
             Knob("beta2", 1e-4, 0.2, complement=True), Knob("weight_decay", 1e-6, 1.0)),
    "muon": (Knob("lr", *LR["muon"]), Knob("momentum", 1e-3, 0.5, complement=True),
             Knob("adam_lr", 1e-4, 0.3), Knob("weight_decay", 1e-6, 1.0)),
}
CATEGORICAL: dict[str, dict[str, tuple]] = {"sgd": {"nesterov": (False, True)}}
OPTIMIZERS: tuple[str, ...] = tuple(SPACES)


def distributions(optimizer: str) -> dict[str, BaseDistribution]:
    dists = {k.search_name: k.distribution() for k in SPACES[optimizer]}
    dists.update({name: CategoricalDistribution(choices) for name, choices in CATEGORICAL.get(optimizer, {}).items()})
    return dists


def hyperparameters(optimizer: str, searched: dict) -> dict:
    """Optuna's point (e.g. one_minus_beta1) -> the optimizer's own hyperparameters (beta1)."""
    values = {k.name: k.value(searched[k.search_name]) for k in SPACES[optimizer]}
    values.update({name: searched[name] for name in CATEGORICAL.get(optimizer, {})})
    return values


def render(optimizer: str, hp: dict, title: str = "") -> str:
    """The Submission file of one trial (numbers by repr, so they round-trip exactly)."""
    head = f'"""{title or "synth baseline"}: {optimizer} with {_describe(hp)}."""\n\nimport torch\n'
    if optimizer in ("adamw", "adam"):
        base = "AdamW" if optimizer == "adamw" else "Adam"
        wd = f", weight_decay={hp['weight_decay']!r}" if optimizer == "adamw" else ", weight_decay=0.0"
        args = f"lr={hp['lr']!r}, betas=({hp['beta1']!r}, {hp['beta2']!r}), eps={hp['eps']!r}{wd}"
        return head + _subclass(base, args)
    if optimizer == "sgd":
        momentum = hp["momentum"]
        args = (f"lr={hp['lr']!r}, momentum={momentum!r}, weight_decay={hp['weight_decay']!r}, "
                f"nesterov={bool(hp['nesterov']) and momentum > 0!r}")
        return head + _subclass("SGD", args)
    if optimizer == "rmsprop":
        args = f"lr={hp['lr']!r}, alpha={hp['alpha']!r}, eps={hp['eps']!r}, momentum={hp['momentum']!r}"
        return head + _subclass("RMSprop", args)
    if optimizer == "lion":
        return head + LION.format(**{k: repr(v) for k, v in hp.items()})
    if optimizer == "muon":
        return head + MUON.format(**{k: repr(v) for k, v in hp.items()})
    raise ValueError(f"unknown optimizer {optimizer!r}: choose one of {', '.join(OPTIMIZERS)}")


def _describe(hp: dict) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in hp.items())


def _subclass(base: str, args: str) -> str:
    return "\n\n" + submission_class(args, base=base)


LION = "\n\n" + submission_class(
    "dict(lr={lr}, beta1={beta1}, beta2={beta2}, weight_decay={weight_decay})",
    doc="Lion (Chen et al. 2023): the sign of an interpolation of momentum and gradient, decoupled decay.",
    update='''        for group in self.param_groups:
            lr, beta1, beta2, wd = group["lr"], group["beta1"], group["beta2"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["momentum"] = torch.zeros_like(p)
                momentum = state["momentum"]
                p.mul_(1.0 - lr * wd)
                p.add_(torch.sign(momentum * beta1 + p.grad * (1.0 - beta1)), alpha=-lr)
                momentum.mul_(beta2).add_(p.grad, alpha=1.0 - beta2)
''')

MUON = '''

def newton_schulz(x):
    """Muon's quintic Newton-Schulz iteration (5 steps): roughly the nearest semi-orthogonal matrix."""
    y = x / (x.norm() + 1e-7)
    tall = y.shape[0] > y.shape[1]
    if tall:
        y = y.T
    for _ in range(5):
        gram = y @ y.T
        y = 3.4445 * y + (-4.7750 * gram + 2.0315 * gram @ gram) @ y
    return y.T if tall else y


''' + submission_class(
    "dict(lr={lr}, momentum={momentum}, adam_lr={adam_lr}, weight_decay={weight_decay})",
    doc="""Muon (Jordan et al. 2024) on every tensor of 2+ dimensions (Nesterov momentum, orthogonalised,
    scaled by sqrt(max(1, rows/cols))); AdamW with betas (0.9, 0.95) on vectors and scalars.""",
    update='''        for group in self.param_groups:
            wd = group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                state = self.state[p]
                if p.ndim >= 2:
                    if not state:
                        state["buf"] = torch.zeros_like(p)
                    buf = state["buf"]
                    buf.mul_(group["momentum"]).add_(g)
                    matrix = (g + group["momentum"] * buf).reshape(p.shape[0], -1)
                    scale = max(1.0, matrix.shape[0] / matrix.shape[1]) ** 0.5
                    p.mul_(1.0 - group["lr"] * wd)
                    p.add_(newton_schulz(matrix).reshape(p.shape), alpha=-group["lr"] * scale)
                    continue
                if not state:
                    state["t"] = 0
                    state["m"] = torch.zeros_like(p)
                    state["v"] = torch.zeros_like(p)
                state["t"] += 1
                t, m, v = state["t"], state["m"], state["v"]
                m.lerp_(g, 0.1)
                v.mul_(0.95).addcmul_(g, g, value=0.05)
                denom = (v / (1.0 - 0.95 ** t)).sqrt_().add_(1e-8)
                p.mul_(1.0 - group["adam_lr"] * wd)
                p.addcdiv_(m, denom, value=-group["adam_lr"] / (1.0 - 0.9 ** t))
''')
