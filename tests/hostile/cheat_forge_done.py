"""Red team (forged or inflated scores): answers steps ahead of time on its channel and claims victory."""
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
                for seq in range(1, 400):
                    os.write(fd, b"D" + b"\x00" * 8 + seq.to_bytes(4, "little"))
            except OSError:
                pass
        return super().step()
