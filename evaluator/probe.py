"""A tiny fixed problem that tells, in milliseconds, whether a candidate is worth a real run.

Two uses: reject children that crash, blow up or never move a parameter before they cost a
training run, and fingerprint what a candidate *does* (its parameters after a few probe steps),
so that two genomes computing the same optimizer share one evaluation.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

PROBE_STEPS = 12
PROBE_SEED = 20240607  # fixed so fingerprints are comparable across runs and machines
FINGERPRINT_DIGITS = 4  # significant digits kept: equal optimizers agree far beyond this


@dataclass
class ProbeResult:
    fingerprint: str | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class ProbeNet(nn.Module):
    """Shapes the tracks have: an embedding-like matrix, a square matrix, a bias vector."""

    def __init__(self, gen: torch.Generator) -> None:
        super().__init__()
        self.embed = nn.Parameter(torch.randn(10, 6, generator=gen) * 0.5)
        self.square = nn.Parameter(torch.randn(6, 6, generator=gen) * 0.4)
        self.bias = nn.Parameter(torch.zeros(6))
        self.readout = nn.Parameter(torch.randn(3, 6, generator=gen) * 0.4)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.embed[tokens].mean(dim=1) @ self.square.T + self.bias)
        return h @ self.readout.T


def run_probe(optimizer_cls: type, before_reading: Callable[[], None] | None = None) -> ProbeResult:
    """`before_reading()` runs before the parameters are checked and fingerprinted (the sandbox's
    takes them private there, evaluator/remote.py)."""
    gen = torch.Generator(device="cpu").manual_seed(PROBE_SEED)
    model = ProbeNet(gen)
    tokens = torch.randint(0, 10, (16, 4), generator=gen)
    targets = torch.randn(16, 3, generator=gen)
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = optimizer_cls(model.parameters())
    for step in range(1, PROBE_STEPS + 1):
        optimizer.zero_grad(set_to_none=True)
        loss = ((model(tokens) - targets) ** 2).mean()
        loss.backward()
        optimizer.step()
        if not math.isfinite(loss.item()):
            return ProbeResult(None, f"probe loss became {loss.item()} at step {step}")
    if before_reading is not None:
        before_reading()
    after = [p.detach() for p in model.parameters()]
    if not all(torch.isfinite(p).all() for p in after):
        return ProbeResult(None, "probe parameters became non-finite")
    if all(torch.equal(a, b) for a, b in zip(before, after)):
        return ProbeResult(None, "the optimizer never changed a parameter")
    return ProbeResult(fingerprint(after))


def fingerprint(tensors: list[torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for t in tensors:
        values = t.double().flatten().tolist()
        digest.update(",".join(f"{v:.{FINGERPRINT_DIGITS - 1}e}" for v in values).encode())
        digest.update(b";")
    return digest.hexdigest()[:16]
