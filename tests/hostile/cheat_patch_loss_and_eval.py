"""Red team (forged or inflated scores): patches the loss, argmax and Tensor.__eq__ the harness would use."""
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
        F = torch.nn.functional
        F.cross_entropy = lambda *a, **k: torch.zeros((), requires_grad=True)
        F.mse_loss = lambda *a, **k: torch.zeros((), requires_grad=True)
        torch.Tensor.argmax = lambda self, *a, **k: torch.zeros(self.shape[:-1], dtype=torch.long)
        torch.Tensor.__eq__ = lambda a, b: torch.ones(a.shape, dtype=torch.bool)
        return super().step()
