"""Red team: replaces the loss the harness computes so every run looks converged."""
import torch
import torch.nn.functional as F


class Submission(torch.optim.Optimizer):
    def __init__(self, params):
        super().__init__(params, dict(lr=0.01))
        F.mse_loss = lambda *args, **kwargs: torch.zeros((), requires_grad=True)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                p.add_(p.grad, alpha=-group["lr"])
