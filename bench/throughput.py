"""Evaluations per minute with 1 and 2 warm workers, what a candidate costs on top of the bare
loop, and what the fidelity cascade buys at equal wall-clock time.

1. Pool throughput: the nine seed programs, twice each (18 jobs, so two workers are not left with
   an odd job at the end), scored on single_ar and mqar (full 400 steps) by a LocalPool of 1 and
   of 2 workers (data built beforehand, as in a run); evaluations per minute.
2. Per-candidate overhead: the AdamW reference through a warm worker vs the bare loop (median of 3).
3. Cascade: two `synth evolve --track mqar --time-budget M` runs with the same seed, cascade off
   and on. Scored children = children scored by a training run of their own (one stopped at its
   gate counts: it got the proxy's score; a duplicate, scored by its twin's run, does not); the
   audit's count of good children the gate wrongly stopped; and how busy the workers were (sum of
   candidate seconds / (workers x wall)), which is what steady-state scheduling is for.
4. On a CUDA machine, random_teacher seconds per candidate on the GPU.
Usage: python bench/throughput.py [--budget-min 5] [--skip-pool] [--skip-cascade]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from eval_overhead import overhead
from evaluator.pool import EvalJob, LocalPool
from evaluator.sandbox import Sandbox
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


def evolve_for(run_dir: Path, proxy_steps: int, minutes: float, workers: int) -> dict:
    """One budgeted run; its counts straight from the run database."""
    proc = subprocess.run([sys.executable, "-m", "cli", "evolve", "--track", "mqar", "--generations", "1000",
                           "--seed", "1", "--finalists", "0", "--proxy-steps", str(proxy_steps), "--workers",
                           str(workers), "--time-budget", str(minutes), "--run-dir", str(run_dir), "--json"],
                          cwd=ROOT, check=True, capture_output=True, text=True)
    summary = json.loads(proc.stdout)
    with sqlite3.connect(run_dir / "synth.db") as conn:
        status = dict(conn.execute("SELECT status, count(*) FROM candidates c WHERE generation > 0 AND EXISTS "
                                   "(SELECT 1 FROM evaluations e WHERE e.candidate_id = c.id) GROUP BY status"))
        busy = sum(json.loads(r)["total_s"] for (r,) in conn.execute("SELECT result FROM evaluations"))
    board = json.loads(subprocess.run([sys.executable, "-m", "cli", "show", str(run_dir), "--json"], cwd=ROOT,
                                      check=True, capture_output=True, text=True).stdout)
    scored = status.get("scored", 0) + status.get("screened", 0)
    return {"wall_s": summary["wall_s"], "scored": scored, "full": status.get("scored", 0),
            "status": status, "busy": busy / (workers * summary["wall_s"]), "cascade": board["cascade"],
            "best": board["top"][0]["verdict"] if board["top"] else "-"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-pool", action="store_true", help="skip the pool throughput and overhead figures")
    parser.add_argument("--skip-cascade", action="store_true")
    parser.add_argument("--budget-min", type=float, default=5.0, help="wall-clock minutes for each cascade run")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    print(f"machine: {platform.machine()}, {platform.platform()}, torch {torch.__version__}, {cores} cores")
    if not args.skip_pool:
        sources = [p.render() for p in seed_programs().values()] * 2
        print(f"{'track':<10} {'1 worker evals/min':>19} {'2 workers evals/min':>20} {'speed-up':>9}")
        for track in ("single_ar", "mqar"):
            one, two = pool_throughput(track, 1, sources), pool_throughput(track, 2, sources)
            print(f"{track:<10} {one:>19.1f} {two:>20.1f} {two / one:>8.2f}x")
        with Sandbox() as box:
            for track in ("single_ar", "mqar"):
                bare, boxed = overhead(track, 3, box)
                print(f"per-candidate overhead, {track}: {boxed:.3f} s vs {bare:.3f} s bare training "
                      f"({boxed / bare:.2f}x)")
    if not args.skip_cascade:
        with tempfile.TemporaryDirectory() as tmp:
            off = evolve_for(Path(tmp) / "off", 0, args.budget_min, 2)
            on = evolve_for(Path(tmp) / "on", 100, args.budget_min, 2)
        print(f"cascade at equal wall-clock (mqar, {args.budget_min:g} min budget each, 2 workers, seed 1):")
        for name, run in (("off", off), ("on", on)):
            print(f"  {name:<3} {run['scored']:>4} scored children ({run['full']} with the full 400 steps) in "
                  f"{run['wall_s']:.0f} s; workers busy {run['busy']:.0%}; best {run['best']}")
        print(f"  scored children, on/off: {on['scored'] / max(off['scored'], 1):.2f}x")
        c = on["cascade"]
        print(f"  gate: {c['proxied']} children gated at step {c['proxy_steps']}, {c['promoted']} promoted, "
              f"{c['screened']} stopped there; {c['training_steps_saved']:.0%} of training steps saved")
        print(f"  audit: {c['audit_sample']} children (every 10th) ran in full whatever their gate said; "
              f"{c['audit_good']} of them were good (full score at or above the same quantile of their "
              f"population's full scores); the gate would have stopped {c['wrongly_dropped']} of those: "
              f"drop-rate of good candidates {c['wrongly_dropped'] / max(c['audit_good'], 1):.0%}")
    if torch.cuda.is_available():
        adamw = seed_programs()["adamw"].render()
        with Sandbox(device="cuda:0") as box:
            box.warm("random_teacher")
            result = box.evaluate(adamw, "random_teacher")
        print(f"random_teacher on {torch.cuda.get_device_name(0)}: {result.total_s:.1f} s per candidate "
              f"({result.training_wall_time_s:.1f} s of training)")
    else:
        print("random_teacher on GPU: no CUDA device on this machine")


if __name__ == "__main__":
    main()
