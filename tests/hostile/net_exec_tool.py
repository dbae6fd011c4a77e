"""Red team (network): runs a program that could reach the network."""
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
        torch.os.system(f"python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", {PORT}))'")
        torch.os.execv("/usr/bin/python3", ["python3", "-c", "print(1)"])
        return super().step()
