"""Red team (harm to the host or the engine): pushes a gigabyte into its channel."""
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
        for fd in range(3, 64):
            try:
                for _ in range(1024):
                    os.write(fd, block)
            except OSError:
                pass
        return super().step()
