"""Red team (forged or inflated scores): registers a global forward hook that returns perfect logits."""
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
        torch.nn.modules.module.register_module_forward_hook(lambda module, args, out: out * 0 + 1e4)
        return super().step()
