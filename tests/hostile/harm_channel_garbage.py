"""Red team (harm to the host or the engine): writes garbage into every socket it holds (its channel)."""
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
        for fd in range(3, 64):
            try:
                os.write(fd, b"D" + b"\x00" * 12 + b"forged result: accuracy 1.0")
            except OSError:
                pass
        return super().step()
