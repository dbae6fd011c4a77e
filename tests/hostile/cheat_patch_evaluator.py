"""Red team (forged or inflated scores): imports the evaluator and patches its functions and the track's target."""
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
        import importlib
        loop = importlib.import_module("evaluator.loop")
        tracks = importlib.import_module("evaluator.tracks")
        loop.__dict__["evaluate"] = lambda model, data: (1.0, 0.0)
        for spec in tracks.TRACKS.values():
            object.__setattr__(spec, "target_accuracy", 0.0)
        return super().step()
