"""What an optimizer step costs: every seed rendered plainly vs compiled, next to torch's AdamW.

On the recall model's parameter shapes (3 x 4160x64 embeddings, a 64x64 linear and its 64 bias),
one thread: the median milliseconds of one `step()` and the aten ops it dispatches (counted with
a TorchDispatchMode). With --end-to-end, also the training wall time of 400 mqar steps for the
adamw and muon seeds (plain and compiled) and torch's AdamW (foreach and fused), as `synth eval` runs them.
Usage: python bench/optimizer_speed.py [--steps 30] [--end-to-end]
"""

from __future__ import annotations

import argparse
import functools
import platform
import statistics
import time

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from primitives.seeds import seed_programs

SHAPES = [(4160, 64)] * 3 + [(64, 64), (64,)]
TORCH_ADAMW = {
    "torch AdamW foreach": functools.partial(torch.optim.AdamW, lr=1e-2, betas=(0.9, 0.99), weight_decay=0,
                                             foreach=True),
    "torch AdamW fused": functools.partial(torch.optim.AdamW, lr=1e-2, betas=(0.9, 0.99), weight_decay=0, fused=True),
}


class OpCounter(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


def load(source: str) -> type:
    namespace: dict = {}
    exec(compile(source, "<submission>", "exec"), namespace)
    return namespace["Submission"]


def measure(optimizer_cls, steps: int) -> tuple[float, int]:
    """(median ms per step, aten ops per step) on the recall shapes, after two warm-up steps."""
    gen = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s, generator=gen) * 0.1) for s in SHAPES]
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen) * 0.01
    optimizer = optimizer_cls(params)
    optimizer.step()
    optimizer.step()
    counter = OpCounter()
    with counter:
        optimizer.step()
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        optimizer.step()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3, counter.count


def end_to_end(candidates: dict[str, type]) -> None:
    from evaluator.loop import train
    from evaluator.tracks import build_track_data, get_track

    data = build_track_data(get_track("mqar"))
    print(f"\nmqar, 400 steps, one thread: training wall time s (final eval accuracy)")
    for name, cls in candidates.items():
        result = train(cls, data)
        print(f"{name:<28} {result.training_wall_time_s:>8.2f}   ({result.final_eval_accuracy:.4f})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--end-to-end", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"machine: {platform.processor() or platform.machine()}, {platform.platform()}, torch {torch.__version__}")
    print(f"shapes {SHAPES}, one thread, median of {args.steps} steps")
    print(f"{'optimizer':<20} {'plain ms':>9} {'ops':>5} {'compiled ms':>12} {'ops':>5} {'speed-up':>9}")
    for name, program in seed_programs().items():
        plain_ms, plain_ops = measure(load(program.render_plain()), args.steps)
        fast_ms, fast_ops = measure(load(program.render()), args.steps)
        print(f"{name:<20} {plain_ms:>9.2f} {plain_ops:>5} {fast_ms:>12.2f} {fast_ops:>5} {plain_ms / fast_ms:>8.1f}x")
    for name, cls in TORCH_ADAMW.items():
        ms, ops = measure(cls, args.steps)
        print(f"{name:<20} {'':>9} {'':>5} {ms:>12.2f} {ops:>5}")
    if args.end_to_end:
        seeds = seed_programs()
        end_to_end({"adamw seed, plain": load(seeds["adamw"].render_plain()),
                    "adamw seed, compiled": load(seeds["adamw"].render()),
                    **TORCH_ADAMW,
                    "muon seed, plain": load(seeds["muon"].render_plain()),
                    "muon seed, compiled": load(seeds["muon"].render())})


if __name__ == "__main__":
    main()
