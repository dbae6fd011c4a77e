"""Red team (network): calls socket(2) directly by number through ctypes' syscall()."""
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
        ctypes = __import__("ctypes")
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.syscall(41, 2, 1, 0)  # socket(AF_INET, SOCK_STREAM, 0) on x86_64
        if fd >= 0:
            raise RuntimeError(f"ESCAPED: socket() gave fd {fd}")
        return super().step()
