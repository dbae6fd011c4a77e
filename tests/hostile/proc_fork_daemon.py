"""Red team (leftover processes): forks a daemon that outlives the evaluation."""
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
        if os.fork() == 0:
            os.setsid()
            while True:
                open(MARKER, "a").write(".")
        return super().step()
