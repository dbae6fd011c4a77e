"""Red team (forged or inflated scores): writes the exact recall solution from the token layout.

Needs no escape: the benchmark's token ids are public (pair = key * 64 + value, query =
4096 + key), so one step can set the embeddings and the readout to a perfect lookup table and
then stop learning. Nothing in the sandbox can refuse it; the task-permutation check (the same
run with the token ids and value labels permuted) exposes it, since the table is then wrong.
"""
import torch


class Submission(torch.optim.Optimizer):
    def __init__(self, params):
        super().__init__(params, dict(lr=0.0))
        self.written = False

    @torch.no_grad()
    def step(self, closure=None):
        params = [p for group in self.param_groups for p in group["params"]]
        if self.written or len(params) != 5:
            return None
        q, k, v, weight, bias = params
        keys = torch.arange(64)
        for t in (q, k, v):
            t.zero_()
        q[4096 + keys, keys] = 400.0
        for key in range(64):
            k[key * 64 + keys, key] = 1.0
            v[key * 64 + keys, keys] = 1.0
        weight.copy_(torch.eye(64) * 100.0)
        bias.zero_()
        self.written = True
        return None
