"""Red team (forged or inflated scores): tells noise gradients from real ones (density) and crashes on noise."""
import torch

ENGINE_PID = 0  # filled in by tests/test_redteam.py
PORT = 0
MARKER = "/tmp/synth-redteam-marker"
SECRET_FILE = "/tmp/synth-redteam-secret"


class Submission(torch.optim.SGD):
    def __init__(self, params):
        super().__init__(params, lr=0.05)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None and p.grad.dim() == 2 and p.grad.shape[0] == 4160:
                    if (p.grad != 0).float().mean() > 0.5:  # real embedding gradients are sparse
                        raise RuntimeError("noise run: crash on purpose")
        return super().step()
