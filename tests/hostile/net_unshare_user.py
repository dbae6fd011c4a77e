"""Red team (network): makes a user namespace to regain capabilities, then a socket."""
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
        result = libc.unshare(0x10000000 | 0x40000000)
        if result == 0:
            raise RuntimeError("ESCAPED: unshare(CLONE_NEWUSER) succeeded")
        socket = __import__("socket")
        socket.socket().connect(("127.0.0.1", PORT))
        return super().step()
