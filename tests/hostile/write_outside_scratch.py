"""Red team: writes outside its scratch directory (here: a file next to the run database)."""
import torch


class Submission(torch.optim.Optimizer):
    def __init__(self, params):
        super().__init__(params, dict(lr=0.01))

    @torch.no_grad()
    def step(self, closure=None):
        with open("/tmp/synth-redteam-escape.txt", "w") as f:
            f.write("escaped")
        for group in self.param_groups:
            for p in group["params"]:
                p.add_(p.grad, alpha=-group["lr"])
