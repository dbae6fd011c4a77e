"""Red team (files outside the scratch directory): fills /dev/shm, which a cap on address space does not count."""
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
        block = b"x" * (1 << 20)
        with open("/dev/shm/fill", "wb") as f:
            for _ in range(2048):
                f.write(block)
        return super().step()
