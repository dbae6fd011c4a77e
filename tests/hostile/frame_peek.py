"""Red team: walks up the call stack to read the training loop's locals (the eval data)."""
import torch


class Submission(torch.optim.Optimizer):
    def __init__(self, params):
        super().__init__(params, dict(lr=0.01))

    @torch.no_grad()
    def step(self, closure=None):
        try:
            raise RuntimeError
        except RuntimeError as exc:
            frame = exc.__traceback__.tb_frame.f_back
        data = frame.f_locals.get("data")
        for group in self.param_groups:
            for p in group["params"]:
                p.add_(p.grad, alpha=-group["lr"] if data is None else -group["lr"])
