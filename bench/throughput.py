"""Evaluations per minute with 1 and 2 warm workers, and what the fidelity cascade buys.

1. Pool throughput: the nine seed programs, twice each (18 jobs, so two workers are not left
   with an odd job at the end), scored on single_ar and mqar (full 400 steps) by a LocalPool of 1
   and of 2 workers (data built beforehand, as in a run); evaluations per minute.
2. Cascade: two short `synth evolve` runs on mqar with the same seed, cascade off and on;
   scored children per minute of wall time (a child screened out by its proxy counts as scored:
   it got a score, the proxy's) and the cascade's audit (good children it wrongly dropped).
3. On a CUDA machine, random_teacher seconds per candidate on the GPU.
Usage: python bench/throughput.py [--skip-cascade]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from evaluator.pool import EvalJob, LocalPool
from primitives.seeds import seed_programs

ROOT = Path(__file__).resolve().parent.parent


def pool_throughput(track: str, workers: int, sources: list[str]) -> float:
    with LocalPool(workers=workers) as pool:
        pool.warm(track)
        started = time.perf_counter()
        results = [r for _, r in pool.evaluate_many((i, EvalJob(s, track)) for i, s in enumerate(sources))]
        elapsed = time.perf_counter() - started
    assert all(r.outcome == "ok" for r in results), [r.error for r in results]
    return 60.0 * len(sources) / elapsed


def evolve_rate(run_dir: Path, proxy_steps: int, generations: int) -> dict:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cli", "evolve", "--track", "mqar", "--generations", str(generations),
                    "--seed", "1", "--finalists", "0", "--proxy-steps", str(proxy_steps), "--run-dir", str(run_dir),
                    "--quiet"], cwd=ROOT, check=True, capture_output=True)
    wall = time.perf_counter() - started
    board = json.loads(subprocess.run([sys.executable, "-m", "cli", "show", str(run_dir), "--json"], cwd=ROOT,
                                      check=True, capture_output=True, text=True).stdout)
    counts = board["counts"]
    children = counts["scored"] + counts["screened"] + counts["failed"]
    return {"wall_s": wall, "scored_children": children, "per_min": 60 * children / wall, "cascade": board["cascade"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-cascade", action="store_true")
    parser.add_argument("--generations", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {platform.platform()}, torch {torch.__version__}, "
          f"{len(__import__('os').sched_getaffinity(0))} cores")
    sources = [p.render() for p in seed_programs().values()] * 2
    print(f"{'track':<10} {'1 worker evals/min':>19} {'2 workers evals/min':>20} {'speed-up':>9}")
    for track in ("single_ar", "mqar"):
        one, two = pool_throughput(track, 1, sources), pool_throughput(track, 2, sources)
        print(f"{track:<10} {one:>19.1f} {two:>20.1f} {two / one:>8.2f}x")
    if not args.skip_cascade:
        with tempfile.TemporaryDirectory() as tmp:
            off = evolve_rate(Path(tmp) / "off", 0, args.generations)
            on = evolve_rate(Path(tmp) / "on", 100, args.generations)
        print(f"cascade (mqar, {args.generations} generations of 16, 2 workers): "
              f"off {off['scored_children']} children in {off['wall_s']:.0f} s ({off['per_min']:.1f}/min); "
              f"on {on['scored_children']} in {on['wall_s']:.0f} s ({on['per_min']:.1f}/min): "
              f"{on['per_min'] / off['per_min']:.2f}x")
        c = on["cascade"]
        print(f"  cascade audit: {c['screened']} screened out, {c['audited']} of them fully scored anyway, "
              f"{c['wrongly_dropped']} of those were good (>= median full score); "
              f"{c['training_steps_saved']:.0%} of training steps saved")
    if torch.cuda.is_available():
        from evaluator.sandbox import Sandbox
        adamw = seed_programs()["adamw"].render()
        with Sandbox(device="cuda:0") as box:
            box.warm("random_teacher")
            result = box.evaluate(adamw, "random_teacher")
        print(f"random_teacher on {torch.cuda.get_device_name(0)}: {result.total_s:.1f} s per candidate")
    else:
        print("random_teacher on GPU: no CUDA device on this machine")


if __name__ == "__main__":
    main()
