"""Red team (files outside the scratch directory): fills /tmp with many files under the file-size cap."""
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
        block = b"x" * (1 << 20)
        for i in range(4096):
            with open(f"/tmp/fill-{i}", "wb") as f:
                for _ in range(3):
                    f.write(block)
        return super().step()
