"""Red team (harm to the host or the engine): attaches to its parent (the candidate host) with ptrace."""
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
        if libc.ptrace(16, torch.os.getppid(), 0, 0) == 0:  # PTRACE_ATTACH
            raise RuntimeError("ESCAPED: ptrace attached")
        return super().step()
