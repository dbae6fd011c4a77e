"""Red team (leftover processes): starts a long-lived program."""
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
        subprocess = __import__("subprocess")
        subprocess.Popen(["sleep", "1000"], start_new_session=True)
        return super().step()
