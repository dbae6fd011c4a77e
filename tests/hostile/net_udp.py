"""Red team (network): sends a datagram to the engine's loopback."""
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
        socket = __import__("socket")
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"ESCAPED", ("127.0.0.1", PORT))
        return super().step()
