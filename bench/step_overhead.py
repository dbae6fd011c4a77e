"""Where isolation's cost lies, per training step: the benchmark's step in-process against the same
step with the optimizer in the jail, the embedding gradients written straight into the shared file
(`direct`) or every gradient copied there (`copied`, as the gradient-noise probe runs).

Times each step's forward and backward, and its `optimizer.step()` with the `loss.item()` after it,
over `--steps` steps of the track's AdamW reference, `--reps` times each way, interleaved; prints
medians per step in microseconds. The worker's process is this one, pinned to one core with its
jail, as a pool pins a worker. Usage: python bench/step_overhead.py [--track single_ar] [--reps 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from bench.eval_overhead import ADAMW
from evaluator.jail import Jail
from evaluator.pool import pinned_core
from evaluator.remote import CandidateSession, RemoteOptimizer
from evaluator.tracks import build_track_data, get_track


def timed_steps(make_optimizer, data, steps: int) -> tuple[list[float], list[float]]:
    """(forward+backward, step) seconds of each step, the benchmark's loop body."""
    model = data.make_student()
    optimizer = make_optimizer(model.parameters())
    forward_backward, stepping = [], []
    for step in range(steps):
        started = time.perf_counter()
        indices = data.batch_indices[step]
        optimizer.zero_grad(set_to_none=True)
        loss = data.loss_fn(model(data.train_x[indices]), data.train_y[indices])
        loss.backward()
        middle = time.perf_counter()
        optimizer.step()
        loss.item()
        forward_backward.append(middle - started)
        stepping.append(time.perf_counter() - middle)
    return forward_backward, stepping


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--track", default="single_ar", choices=["random_teacher", "single_ar", "mqar"])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--reps", type=int, default=4)
    args = parser.parse_args()
    os.sched_setaffinity(0, {pinned_core(0, sorted(os.sched_getaffinity(0)))})  # before the jail forks
    torch.set_num_threads(1)
    data = build_track_data(get_track(args.track))
    namespace: dict = {}
    exec(ADAMW, namespace)  # noqa: S102 - the reference optimizer
    jail = Jail()
    rows: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in ("bare", "direct", "copied")}
    copied_bytes = {}
    try:
        for _ in range(args.reps):
            for name in rows:
                if name == "bare":
                    runs = timed_steps(namespace["Submission"], data, args.steps)
                else:
                    session = CandidateSession(jail, ADAMW, timeout_s=600, memory_mb=None, direct=name == "direct")
                    try:
                        runs = timed_steps(lambda params, s=session: RemoteOptimizer(params, s), data, args.steps)
                    finally:
                        session.close()
                    copied_bytes[name] = session.copied_bytes // args.steps
                rows[name][0].extend(runs[0])
                rows[name][1].extend(runs[1])
    finally:
        jail.kill()
    print(f"{args.track}: medians per step over {args.reps} x {args.steps} steps, us; isolation: {jail.isolation}")
    print(f"{'':<8} {'fwd+bwd':>8} {'step':>8} {'total':>8} {'over bare':>10} {'copied/step':>12}")
    bare_total = None
    for name, (forward_backward, stepping) in rows.items():
        fb, st = statistics.median(forward_backward) * 1e6, statistics.median(stepping) * 1e6
        total = statistics.median([a + b for a, b in zip(forward_backward, stepping)]) * 1e6
        bare_total = bare_total or total
        copied = f"{copied_bytes[name] / 1e6:.3f} MB" if name in copied_bytes else ""
        print(f"{name:<8} {fb:>8.0f} {st:>8.0f} {total:>8.0f} {total - bare_total:>+10.0f} {copied:>12}")


if __name__ == "__main__":
    main()
