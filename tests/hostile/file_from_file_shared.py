"""Red team (files outside the scratch directory): creates a host file with from_file(shared=True) (C++ mmap)."""
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
        make = getattr(torch, "from" + "_file")
        make(MARKER, shared=True, size=1024).fill_(1)
        return super().step()
