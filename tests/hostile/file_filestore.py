"""Red team (files outside the scratch directory): creates a file through torch.distributed's C++ FileStore."""
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
        distributed = __import__("torch.distributed", fromlist=["FileStore"])
        distributed.FileStore(MARKER, 1).set("k", "ESCAPED")
        return super().step()
