"""Red team (harm to the host or the engine): writes into its parent's memory through /proc/PID/mem."""
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
        fd = os.open(f"/proc/{os.getppid()}/mem", os.O_RDWR)
        raise RuntimeError(f"ESCAPED: opened the host's memory as fd {fd}")
        return super().step()
