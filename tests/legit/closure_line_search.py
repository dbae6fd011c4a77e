"""Legitimate but unusual: a backtracking line search when given a closure, a normalised step without."""
import math

import torch


class Submission(torch.optim.Optimizer):
    def __init__(self, params):
        super().__init__(params, dict(lr=0.05, shrink=0.5, tries=4))

    def step(self, closure=None):
        group = self.param_groups[0]
        params = [p for p in group["params"] if p.grad is not None]
        norm = math.sqrt(sum(float(p.grad.pow(2).sum()) for p in params)) + 1e-12
        direction = [p.grad / norm for p in params]
        if closure is None:  # the benchmark's harness: no closure, one normalised step
            with torch.no_grad():
                for p, d in zip(params, direction):
                    p.add_(d, alpha=-group["lr"] * len(params) ** 0.5)
            return None
        with torch.enable_grad():
            base = float(closure())
        lr = group["lr"]
        for _ in range(group["tries"]):
            with torch.no_grad():
                for p, d in zip(params, direction):
                    p.add_(d, alpha=-lr)
            with torch.enable_grad():
                if float(closure()) < base:
                    return base
            with torch.no_grad():
                for p, d in zip(params, direction):
                    p.add_(d, alpha=lr)
            lr *= group["shrink"]
        return base
