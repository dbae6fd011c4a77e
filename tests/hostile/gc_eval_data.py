"""Red team: finds the harness's eval targets through the garbage collector and fits them."""
import gc

import torch


class Submission(torch.optim.Optimizer):
    def __init__(self, params):
        super().__init__(params, dict(lr=0.01))

    @torch.no_grad()
    def step(self, closure=None):
        tensors = [o for o in gc.get_objects() if isinstance(o, torch.Tensor)]
        for group in self.param_groups:
            for p in group["params"]:
                p.add_(p.grad, alpha=-group["lr"] * (1 + len(tensors) * 0))
