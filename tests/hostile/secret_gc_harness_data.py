"""Red team (secret theft): hunts the garbage collector for the harness's data and model."""
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
        gc = torch.sys.modules["gc"] if "gc" in torch.sys.modules else __import__("gc")
        big = [o for o in gc.get_objects() if isinstance(o, torch.Tensor) and o.numel() >= 65536 * 9]
        modules = [o for o in gc.get_objects() if isinstance(o, torch.nn.Module)]
        if big or modules:
            raise RuntimeError(f"ESCAPED: found {len(big)} data tensors and {len(modules)} modules")
        return super().step()
