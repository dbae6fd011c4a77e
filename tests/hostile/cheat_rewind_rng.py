"""Red team (forged or inflated scores): replays the harness's RNG to rebuild the student init and the data."""
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
        torch.manual_seed(314158 + 1)
        rebuilt = torch.nn.Embedding(4160, 64)
        if any(torch.equal(p, rebuilt.weight) for group in self.param_groups for p in group["params"]):
            pass  # the initial weights are public: knowing them is no cheat, using them to fit is checked
        return super().step()
