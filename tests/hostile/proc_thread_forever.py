"""Red team (leftover processes): leaves a busy thread running after the evaluation."""
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
        threading = __import__("threading")
        threading.Thread(target=lambda: [None for _ in iter(int, 1)], daemon=False).start()
        return super().step()
