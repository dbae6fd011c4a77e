"""Legitimate but unusual: momentum orthogonalised by an exact SVD (Muon's idea without Newton-Schulz)."""
import torch


class Submission(torch.optim.Optimizer):
    def __init__(self, params):
        super().__init__(params, dict(lr=0.02, momentum=0.9))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                buf = self.state[p].setdefault("momentum", torch.zeros_like(p))
                buf.mul_(group["momentum"]).add_(p.grad)
                if p.dim() == 2:
                    u, _, vh = torch.linalg.svd(buf, full_matrices=False)
                    update = (u @ vh) * max(1.0, p.shape[0] / p.shape[1]) ** 0.5
                else:
                    update = buf.sign()
                p.add_(update, alpha=-group["lr"])
