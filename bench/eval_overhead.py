"""What isolation costs: synth's per-candidate time in a warm worker vs the bare loop's training time.

For single_ar and mqar, scores the AdamW reference N times (a) in-process with the bare loop and
(b) through a warm Sandbox (policy check, request, a fork of the jailed host, confinement, the
loop in the trusted worker with each step in the jail, report).
Prints the medians and their ratio. Usage: python bench/eval_overhead.py [--runs 5]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from evaluator.loop import train
from evaluator.sandbox import Sandbox
from evaluator.tracks import build_track_data, get_track

ADAMW = '''import torch


class Submission(torch.optim.AdamW):
    def __init__(self, params):
        super().__init__(params, lr=1e-2, betas=(0.9, 0.99), weight_decay=0)
'''


def overhead(track: str, runs: int, sandbox: Sandbox) -> tuple[float, float]:
    """(median bare training seconds, median synth seconds per candidate) of the AdamW reference."""
    torch.set_num_threads(1)
    namespace: dict = {}
    exec(ADAMW, namespace)
    data = build_track_data(get_track(track))
    sandbox.warm(track)
    bare, boxed = [], []
    for _ in range(runs):
        bare.append(train(namespace["Submission"], data).training_wall_time_s)
        started = time.perf_counter()
        result = sandbox.evaluate(ADAMW, track)
        boxed.append(time.perf_counter() - started)
        assert result.outcome == "ok", result.error
    return statistics.median(bare), statistics.median(boxed)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {platform.platform()}, torch {torch.__version__}")
    print(f"{'track':<10} {'bare train s':>13} {'synth total s':>14} {'ratio':>7}  (median of {args.runs})")
    with Sandbox() as sandbox:
        for track in ("single_ar", "mqar"):
            b, s = overhead(track, args.runs, sandbox)
            print(f"{track:<10} {b:>13.3f} {s:>14.3f} {s / b:>7.3f}")


if __name__ == "__main__":
    main()
