"""Legitimate but unusual: helper methods named get_state/set_state, a local named `input`, an
attribute named `seed`, and torch's own gradient clipping."""
import torch
from torch.nn.utils import clip_grad_norm_


class Submission(torch.optim.Optimizer):
    def __init__(self, params):
        super().__init__(params, dict(lr=0.05, betas=(0.9, 0.99)))
        self.seed = 17  # a label, not an RNG seed
        self.set_state(self.get_state())

    def get_state(self):
        return {"steps": getattr(self, "steps", 0)}

    def set_state(self, saved):
        self.steps = saved["steps"]

    @torch.no_grad()
    def step(self, closure=None):
        self.steps += 1
        params = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
        clip_grad_norm_(params, max_norm=1.0)
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                input = p.grad
                m = self.state[p].setdefault("m", torch.zeros_like(p))
                v = self.state[p].setdefault("v", torch.zeros_like(p))
                m.lerp_(input, 1 - b1)
                v.mul_(b2).addcmul_(input, input, value=1 - b2)
                m_hat = m / (1 - b1 ** self.steps)
                v_hat = v / (1 - b2 ** self.steps)
                p.addcdiv_(m_hat, v_hat.sqrt().add_(1e-8), value=-group["lr"])
