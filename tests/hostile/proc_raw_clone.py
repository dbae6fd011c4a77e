"""Red team (leftover processes): calls clone(2) by number to make a process without CLONE_THREAD."""
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
        pid = libc.syscall(56, 17, 0, 0, 0, 0)  # clone(SIGCHLD) on x86_64
        if pid == 0:
            libc.pause()
        if pid > 0:
            raise RuntimeError(f"ESCAPED: clone made process {pid}")
        return super().step()
