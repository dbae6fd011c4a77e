"""What an optimizer step costs: every seed rendered plainly vs compiled, next to torch's AdamW.

On the recall model's parameter shapes (3 x 4160x64 embeddings, a 64x64 linear and its 64 bias),
one thread: the median milliseconds of one `step()` and the aten ops it dispatches (counted with
a TorchDispatchMode). With --end-to-end, also the training wall time of 400 mqar steps for the
adamw and muon seeds (plain and compiled) and torch's AdamW (foreach and fused), as `synth eval` runs them.
Usage: python bench/optimizer_speed.py [--steps 30] [--end-to-end [--runs 3]]
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


def measure(optimizers: dict[str, type], steps: int) -> dict[str, tuple[float, int]]:
    """name -> (median ms per step, aten ops per step) on the recall shapes, after two warm-up steps.

    The optimizers step in turn, one step each per round, so that load from other processes falls
    on all of them alike.
    """
    running = {}
    for name, optimizer_cls in optimizers.items():
        gen = torch.Generator().manual_seed(0)
        params = [torch.nn.Parameter(torch.randn(s, generator=gen) * 0.1) for s in SHAPES]
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen) * 0.01
        running[name] = optimizer_cls(params)
        running[name].step()
        running[name].step()
    ops = {}
    for name, optimizer in running.items():
        counter = OpCounter()
        with counter:
            optimizer.step()
        ops[name] = counter.count
    times: dict[str, list[float]] = {name: [] for name in running}
    for _ in range(steps):
        for name, optimizer in running.items():
            started = time.perf_counter()
            optimizer.step()
            times[name].append(time.perf_counter() - started)
    return {name: (statistics.median(times[name]) * 1e3, ops[name]) for name in running}


def end_to_end(candidates: dict[str, type], runs: int) -> None:
    """Training wall time of 400 mqar steps per candidate; with several runs, in turn, the median."""
    from evaluator.loop import train
    from evaluator.tracks import build_track_data, get_track

    data = build_track_data(get_track("mqar"))
    results: dict[str, list] = {name: [] for name in candidates}
    for _ in range(runs):
        for name, cls in candidates.items():
            results[name].append(train(cls, data))
    print(f"\nmqar, 400 steps, one thread: training wall time s, median of {runs} (final eval accuracy)")
    for name, runs_of in results.items():
        wall = statistics.median(r.training_wall_time_s for r in runs_of)
        print(f"{name:<28} {wall:>8.2f}   ({runs_of[0].final_eval_accuracy:.4f})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--end-to-end", action="store_true")
    parser.add_argument("--runs", type=int, default=1, help="end-to-end runs per candidate")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"machine: {platform.processor() or platform.machine()}, {platform.platform()}, torch {torch.__version__}")
    print(f"shapes {SHAPES}, one thread, median of {args.steps} steps")
    print(f"{'optimizer':<20} {'plain ms':>9} {'ops':>5} {'compiled ms':>12} {'ops':>5} {'speed-up':>9}")
    seeds = seed_programs()
    candidates = {**{f"{name} plain": load(program.render_plain()) for name, program in seeds.items()},
                  **{f"{name} compiled": load(program.render()) for name, program in seeds.items()}, **TORCH_ADAMW}
    figures = measure(candidates, args.steps)
    for name in seeds:
        (plain_ms, plain_ops), (fast_ms, fast_ops) = figures[f"{name} plain"], figures[f"{name} compiled"]
        print(f"{name:<20} {plain_ms:>9.2f} {plain_ops:>5} {fast_ms:>12.2f} {fast_ops:>5} {plain_ms / fast_ms:>8.1f}x")
    for name in TORCH_ADAMW:
        ms, ops = figures[name]
        print(f"{name:<20} {'':>9} {'':>5} {ms:>12.2f} {ops:>5}")
    if args.end_to_end:
        end_to_end({"adamw seed, plain": load(seeds["adamw"].render_plain()),
                    "adamw seed, compiled": load(seeds["adamw"].render()),
                    **TORCH_ADAMW,
                    "muon seed, plain": load(seeds["muon"].render_plain()),
                    "muon seed, compiled": load(seeds["muon"].render())}, args.runs)


if __name__ == "__main__":
    main()
