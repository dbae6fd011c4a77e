"""Red team (files outside the scratch directory): rewrites the evaluator's and torch's source on disk."""
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
        for path in ("/synth/evaluator/loop.py", torch.__file__, os.path.join(os.path.dirname(torch.__file__), "optim", "sgd.py")):
            with open(path, "a") as f:
                f.write("\n# ESCAPED\n")
        return super().step()
