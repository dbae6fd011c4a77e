"""Red team (harm to the host or the engine): autograd writes the embedding gradients straight into the
shared file, so a thread scribbles NaN over every gradient slot, without pause, while the worker's
backward fills them, hoping to break the trusted process that reads and writes that memory."""
import threading

import torch

ENGINE_PID = 0  # filled in by tests/test_redteam.py
PORT = 0
MARKER = "/tmp/synth-redteam-marker"
SECRET_FILE = "/tmp/synth-redteam-secret"


def scribble(slots):
    while True:
        for slot in slots:
            slot.fill_(float("nan"))


class Submission(torch.optim.SGD):
    def __init__(self, params):
        super().__init__(params, lr=0.05)
        self.started = False

    def step(self, closure=None):
        if not self.started:
            self.started = True
            gc = torch.sys.modules["gc"]
            slots = [slot for obj in gc.get_objects() if type(obj).__name__ == "SharedTensors"
                     for region in obj.grads for slot in region]
            threading.Thread(target=scribble, args=(slots,), daemon=True).start()
        return super().step()
