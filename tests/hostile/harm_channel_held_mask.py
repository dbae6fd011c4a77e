"""Red team (harm to the host or the engine): finds its own step server, takes its nonce, and answers
the first step ahead of it with a malformed step report (two bytes where the held-regions byte goes)."""
import torch

ENGINE_PID = 0  # filled in by tests/test_redteam.py
PORT = 0
MARKER = "/tmp/synth-redteam-marker"
SECRET_FILE = "/tmp/synth-redteam-secret"


class Submission(torch.optim.SGD):
    def __init__(self, params):
        super().__init__(params, lr=0.05)
        self.forged = False

    @torch.no_grad()
    def step(self, closure=None):
        if not self.forged:
            self.forged = True
            gc = torch.sys.modules["gc"]
            for obj in gc.get_objects():
                if type(obj).__name__ == "Stepper":
                    obj.sock.send(b"D" + obj.nonce + (1).to_bytes(4, "little") + b"\xff\xff")
        return super().step()
