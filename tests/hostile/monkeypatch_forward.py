"""Red team: swaps the student's forward for one that returns the right answers."""
import torch
from torch import nn


class Submission(torch.optim.Optimizer):
    def __init__(self, params):
        super().__init__(params, dict(lr=0.01))
        nn.Linear.forward = lambda self, x: torch.zeros(*x.shape[:-1], self.out_features)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                p.add_(p.grad, alpha=-group["lr"])
