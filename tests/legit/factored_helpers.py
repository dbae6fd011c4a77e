"""Legitimate but unusual: Adafactor-style factored second moments, written with module-level helpers."""
import math

import torch


def factored_second_moment(row, col, grad_sq, beta):
    row.mul_(beta).add_(grad_sq.mean(dim=-1), alpha=1 - beta)
    col.mul_(beta).add_(grad_sq.mean(dim=-2), alpha=1 - beta)
    return torch.outer(row, col) / row.mean().clamp_min(1e-30)


def rms(x):
    return x.pow(2).mean().sqrt()


class Submission(torch.optim.Optimizer):
    def __init__(self, params):
        super().__init__(params, dict(lr=0.03, beta=0.95, eps=1e-30, clip=1.0))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                grad_sq = p.grad.pow(2) + group["eps"]
                if p.dim() == 2:
                    if not state:
                        state["row"] = torch.zeros(p.shape[0])
                        state["col"] = torch.zeros(p.shape[1])
                    v = factored_second_moment(state["row"], state["col"], grad_sq, group["beta"])
                else:
                    v = state.setdefault("v", torch.zeros_like(p))
                    v.mul_(group["beta"]).add_(grad_sq, alpha=1 - group["beta"])
                update = p.grad / v.sqrt().clamp_min(1e-12)
                update.div_(max(1.0, float(rms(update)) / group["clip"]))
                p.add_(update, alpha=-group["lr"] * math.sqrt(1.0))
