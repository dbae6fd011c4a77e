"""What isolation costs: scoring a candidate through synth's jail vs the benchmark's bare loop.

For single_ar and mqar, the AdamW reference is scored N times each way, alternating:
- bare: the benchmark's loop (`evaluator.loop.train`, model build to final evaluation) with the
  optimizer in the same process, run in a child process with the worker's own environment (the
  same allocator settings, one thread), so the two differ only by the jail;
- synth: `Sandbox.evaluate` through a warm worker, as the search calls it (policy check, request,
  a fork of the jailed host, confinement, the loop in the trusted worker with each optimizer step
  in the candidate's process, the result back).
Both are pinned to the core a pool's first worker gets (evaluator/pool.py `pinned_core`), unless
--no-pin. Prints the medians, the median of the pairs' ratios with a bootstrapped 90% interval (a shared
machine's speed wanders by ±10% from run to run), and where synth's time goes.
With --against CHECKOUT, another checkout's worker is scored in the same rounds, for a change's
own effect. Usage: python bench/eval_overhead.py [--runs 15] [--no-pin] [--against ../base]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time

import torch

import evaluator.sandbox as sandbox_module
from evaluator.pool import pinned_core
from evaluator.sandbox import PACKAGE_ROOT, Sandbox, clean_environment

ADAMW = '''import torch


class Submission(torch.optim.AdamW):
    def __init__(self, params):
        super().__init__(params, lr=1e-2, betas=(0.9, 0.99), weight_decay=0)
'''

BARE = '''
import json, os, sys, time, torch
if os.environ.get("SYNTH_CPU"):
    os.sched_setaffinity(0, {int(os.environ["SYNTH_CPU"])})  # the core the worker gets, as a pool pins it
from evaluator.loop import train
from evaluator.tracks import build_track_data, get_track
torch.set_num_threads(1)
namespace = {}
exec(sys.argv[2], namespace)
data = build_track_data(get_track(sys.argv[1]))
train(lambda params: torch.optim.SGD(params, lr=0.0), data, steps=1)  # as the worker warms its loop
for line in sys.stdin:
    started = time.perf_counter()
    result = train(namespace["Submission"], data)
    print(json.dumps({"total_s": time.perf_counter() - started, "loop_s": result.training_wall_time_s,
                      "curve": [p.metric for p in result.curve]}), flush=True)
'''


class BareLoop:
    """The benchmark's loop in a process of its own, data built once, one run per request."""

    def __init__(self, track: str, cpu: int | None) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", BARE, track, ADAMW], cwd=PACKAGE_ROOT,
                                     env=clean_environment(cpu=cpu), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)

    def run(self) -> dict:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def measure(track: str, runs: int, sandbox: Sandbox, against: Sandbox | None = None) -> dict:
    """Medians, and each ratio as the median of its runs' pairs with a bootstrapped 90% interval."""
    bare = BareLoop(track, sandbox.cpu)
    rows: dict[str, list[float]] = {"bare": [], "bare_loop": [], "synth": [], "synth_loop": [], "setup": [],
                                    "against": []}
    try:
        for run in range(runs):
            reference = bare.run()
            rows["bare"].append(reference["total_s"])
            rows["bare_loop"].append(reference["loop_s"])
            turns = [("synth", sandbox), ("against", against)] if against else [("synth", sandbox)]
            for name, box in turns[::-1] if run % 2 else turns:  # neither checkout always goes first
                started = time.perf_counter()
                result = box.evaluate(ADAMW, track)
                rows[name].append(time.perf_counter() - started)
                assert result.outcome == "ok", result.error
                assert [p.metric for p in result.curve] == reference["curve"], "the jail changed the score"
                if name == "synth":
                    rows["synth_loop"].append(result.training_wall_time_s)
                    rows["setup"].append(result.setup_s)
    finally:
        bare.close()
    figures = {name: statistics.median(values) for name, values in rows.items() if values}
    pairs = {"ratio": ("synth", "bare")} | ({"against_ratio": ("against", "bare"), "change": ("synth", "against")}
                                          if against else {})
    for name, (top, bottom) in pairs.items():
        ratios = [a / b for a, b in zip(rows[top], rows[bottom])]
        figures[name] = (statistics.median(ratios), *bootstrap_interval(ratios))
    return figures


def bootstrap_interval(ratios: list[float], draws: int = 2000, level: float = 0.9) -> tuple[float, float]:
    """Where the median pair ratio lies, 90% of the time, had the machine's noise fallen otherwise:
    a shared machine's speed wanders by ±10% between runs, so one pair says little."""
    rng = random.Random(0)
    medians = sorted(statistics.median(rng.choices(ratios, k=len(ratios))) for _ in range(draws))
    return medians[int(draws * (1 - level) / 2)], medians[int(draws * (1 + level) / 2) - 1]


def worker_of(root: str, cpu: int | None) -> Sandbox:
    """A warm worker running the evaluator of the checkout at `root`."""
    here = sandbox_module.PACKAGE_ROOT
    sandbox_module.PACKAGE_ROOT = os.path.abspath(root)
    try:
        box = Sandbox(cpu=cpu)
        box.warm("single_ar")  # starts the worker, with that checkout on its path
    finally:
        sandbox_module.PACKAGE_ROOT = here
    return box


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--no-pin", action="store_true",
                        help="let the OS place the worker and its candidate (a pool pins each worker to a core)")
    parser.add_argument("--against", metavar="CHECKOUT",
                        help="also score through another checkout's worker (say, `git worktree add ../base main`), "
                             "interleaved, and print this checkout's time over that one's")
    args = parser.parse_args()
    cpu = None if args.no_pin else pinned_core(0, sorted(os.sched_getaffinity(0)))
    print(f"machine: {platform.processor() or platform.machine()}, {platform.platform()}, torch {torch.__version__}")
    print(f"worker, candidate and bare loop pinned to core {cpu}" if cpu is not None else "not pinned")
    print(f"{'track':<10} {'bare s':>8} {'synth s':>8} {'ratio':>6} {'90% interval':>13}   {'bare loop':>9} "
          f"{'synth loop':>10} {'setup':>6}")
    with Sandbox(cpu=cpu) as sandbox:
        against = worker_of(args.against, cpu) if args.against else None
        try:
            for track in ("single_ar", "mqar"):
                sandbox.warm(track)
                if against:
                    against.warm(track)
                m = measure(track, args.runs, sandbox, against)
                print(f"{track:<10} {m['bare']:>8.3f} {m['synth']:>8.3f} {interval(m['ratio'])}   "
                      f"{m['bare_loop']:>9.3f} {m['synth_loop']:>10.3f} {m['setup']:>6.3f}")
                if against:
                    print(f"{'':<10} {args.against}: {m['against']:.3f} s, over bare {interval(m['against_ratio'])}; "
                          f"this checkout over it {interval(m['change'])}")
        finally:
            if against:
                against.close()
        print(f"(medians of {args.runs} runs each way, alternating; a ratio is the median of the runs' pairs, "
              "its interval bootstrapped; loop = training steps only)")
        print(f"isolation: {sandbox.isolation}")


def interval(figure: tuple[float, float, float]) -> str:
    median, low, high = figure
    return f"{median:>6.3f} {low:>6.3f}-{high:<6.3f}"


if __name__ == "__main__":
    main()
