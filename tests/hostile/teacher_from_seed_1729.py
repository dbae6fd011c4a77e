"""The benchmark's known cheat: rebuild the hidden teacher from its seed and copy it in one step.

random_teacher's targets come from nn.MultiheadAttention(128, 1, batch_first=True) whose
parameters were filled, in parameters() order, with uniform_(-1, 1) from one generator seeded
1729. The student has the same architecture, so copying the teacher's weights drives the eval
MSE to zero after the first step. Must be rejected by the static policy (rng, hidden-seed).
"""

import torch
from torch import nn

TEACHER_SEED = 1729


class Submission(torch.optim.Optimizer):
    def __init__(self, params):
        super().__init__(params, dict(lr=0.0))
        self.copied = False

    @torch.no_grad()
    def step(self, closure=None):
        if self.copied:
            return None
        teacher = nn.MultiheadAttention(128, 1, batch_first=True)
        gen = torch.Generator(device="cpu").manual_seed(TEACHER_SEED)
        for weight in teacher.parameters():
            weight.uniform_(-1, 1, generator=gen)
        params = [p for group in self.param_groups for p in group["params"]]
        for p, w in zip(params, teacher.parameters()):
            p.copy_(w)
        self.copied = True
        return None
