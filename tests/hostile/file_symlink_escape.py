"""Red team (files outside the scratch directory): plants a symlink to / in its scratch dir and writes through it."""
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
        os = torch.os
        os.symlink("/", "root-link")
        open("root-link" + MARKER, "w").write("ESCAPED")
        return super().step()
