"""Red team (secret theft): walks every frame it can reach for the loop's locals."""
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
        inspect = torch.sys.modules.get("inspect") or __import__("inspect")
        names = set()
        for info in inspect.stack():
            names.update(info.frame.f_locals)
        for frame in torch.sys._current_frames().values():
            while frame is not None:
                names.update(frame.f_locals)
                frame = frame.f_back
        if names & {"data", "model", "spec", "train_x", "eval_y"}:
            raise RuntimeError("ESCAPED: the harness's locals are reachable: " + repr(sorted(names)))
        return super().step()
