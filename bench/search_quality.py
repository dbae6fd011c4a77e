"""How good are the optimizers synth finds? Fixed seeds and budgets on single_ar and mqar.

For each track: runs (or reads) `synth evolve --seed S --generations G`, then prints the elite's
benchmark result (steps to pass, final accuracy), the evaluations it took to find it, the best
seed program's result, and the baselines docs/BENCHMARK.md reports for the same harness.
Usage: python bench/search_quality.py [--generations 50] [--tracks mqar single_ar] [--runs-dir runs]
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
from pathlib import Path

from population.db import RunDB
from synth.search.fitness import describe
from synth.reporting.queries import search_result

ROOT = Path(__file__).resolve().parent.parent
BASELINES = {  # docs/BENCHMARK.md, "How hard the tracks are": the best standard optimizers, same harness
    "single_ar": "best standard optimizer: Adam(lr 0.1, betas (0.9, 0.9)) fail 0.953; AdamW lr 1e-2 fail 0.6194",
    "mqar": "AdamW lr 0.1: pass @ 150; AdamW lr 0.03 / Lion lr 0.01: pass @ 350; AdamW lr 1e-2: fail 0.9180",
}


def first_eval_reaching(db: RunDB, fitness: float) -> int:
    """How many evaluations the run had finished when the elite's score first appeared."""
    for n, ev in enumerate(db.evaluations(), 1):
        if ev.fitness is not None and ev.fitness >= fitness:
            return n
    return -1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--generations", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tracks", nargs="+", default=["mqar", "single_ar"])
    parser.add_argument("--runs-dir", default="runs")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {platform.platform()}")
    for track in args.tracks:
        run_dir = ROOT / args.runs_dir / f"{track}-seed{args.seed}"
        subprocess.run([sys.executable, "-m", "cli", "evolve", "--track", track, "--generations", str(args.generations),
                        "--seed", str(args.seed), "--run-dir", str(run_dir), "--quiet"], cwd=ROOT, check=True)
        with RunDB.open(run_dir) as db:
            scored = [c for c in db.top(1000) if c.status == "scored"]
            elite = scored[0]
            result = search_result(db, elite)
            seeds = [c for c in scored if c.operator == "seed"]
            best_seed = seeds[0] if seeds else None
            seed_result = search_result(db, best_seed) if best_seed else None
            print(f"\n{track}: {args.generations} generations, seed {args.seed}, {len(db.evaluations())} evaluations")
            print(f"  elite #{elite.id}: {describe(result)} (final accuracy {result.final_eval_accuracy:.4f}), "
                  f"found after {first_eval_reaching(db, elite.fitness)} evaluations")
            if seed_result:
                print(f"  best seed program ({best_seed.operator_params.get('name')}): {describe(seed_result)}")
            print(f"  docs/BENCHMARK.md baselines: {BASELINES[track]}")
            print("  elite program:\n    " + (elite.genome or "(code)").replace("\n", "\n    "))


if __name__ == "__main__":
    main()
