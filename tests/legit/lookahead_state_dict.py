"""Legitimate but unusual: Lookahead around AdamW, syncing through state dicts."""
import copy

import torch


class Submission(torch.optim.Optimizer):
    def __init__(self, params):
        params = list(params)
        super().__init__(params, dict(alpha=0.5, k=5))
        self.inner = torch.optim.AdamW(params, lr=0.02, betas=(0.9, 0.99), weight_decay=0.0)
        self.slow = [p.detach().clone() for p in params]
        self.count = 0
        self.snapshot = copy.deepcopy(self.inner.state_dict())

    @torch.no_grad()
    def step(self, closure=None):
        self.inner.step()
        self.count += 1
        group = self.param_groups[0]
        if self.count % group["k"] == 0:
            for p, slow in zip(group["params"], self.slow):
                slow.add_(p - slow, alpha=group["alpha"])
                p.copy_(slow)
            self.snapshot = copy.deepcopy(self.inner.state_dict())
            self.inner.load_state_dict(self.snapshot)
        return None
