"""Red team (files outside the scratch directory): leaves a file in /tmp for the next candidate to find."""
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
        if getattr(self, "planted", False):
            return super().step()
        self.planted = True
        if os.path.exists("/tmp/planted-by-previous"):
            raise RuntimeError("ESCAPED: a file from an earlier candidate survived")
        open("/tmp/planted-by-previous", "w").write("hello")
        return super().step()
