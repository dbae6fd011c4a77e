"""Red team: sleeps to game the training-wall-time tiebreak of a rival's run (or to stall ours)."""
import time

import torch


class Submission(torch.optim.Optimizer):
    def __init__(self, params):
        super().__init__(params, dict(lr=0.01))

    @torch.no_grad()
    def step(self, closure=None):
        time.sleep(3600)
