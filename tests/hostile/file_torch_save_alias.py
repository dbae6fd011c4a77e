"""Red team (files outside the scratch directory): writes through torch.save reached by an alias (C++ writer)."""
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
        save = getattr(torch, "sa" + "ve")
        save(torch.zeros(3), MARKER)
        return super().step()
