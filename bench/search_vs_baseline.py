"""Does the search find what tuning a standard optimizer cannot? One track, both sides, equal cost.

    python bench/search_vs_baseline.py --track single_ar --trials 200 --generations 50 --out runs/bench

runs (or resumes, or just reads, if finished) `synth baseline --optimizer adamw --trials N` and the
default `synth evolve --generations G`, then prints, for both: the cost in full-budget-equivalent
evaluations (cascade savings counted for both), the elite on the benchmark seeds (verdict and eval
curve) and on 3 held-out seed sets (mean fitness), and the best so far against cost.
The search beats the baseline when its elite passes earlier, or passes at the same step with a
higher accuracy one eval point earlier (synth/search/fitness.py orders exactly so); on the held-out mean too.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from population.db import RunDB  # noqa: E402
from synth.baseline.compare import comparison  # noqa: E402


def run(*args: str) -> None:
    print("$ synth " + " ".join(args), flush=True)
    done = subprocess.run([sys.executable, "-m", "cli", *args, "--quiet"], cwd=ROOT)
    if done.returncode != 0:
        sys.exit(f"synth {args[0]} failed with exit code {done.returncode}")


def curve(points: dict) -> str:
    return " ".join(f"{step}:{metric:.3f}" for step, metric in sorted(points.items(), key=lambda kv: int(kv[0])))


def show_elite(name: str, side: dict) -> None:
    e = side["elite"]
    print(f"\n{name}: {side['cost']:.1f} full-budget-equivalent evaluations")
    if e is None:
        print("  no scored candidate")
        return
    print(f"  elite #{e['id']} ({e['operator']}): {e['verdict']}, fitness {e['fitness']:.4f}")
    print(f"  curve  {curve(e['curve'])}")
    for h in e["heldout"]:
        print(f"  {h['seed_set']}: {h['verdict']:<12} {curve(h['curve'])}")
    if e["heldout_mean_fitness"] is not None:
        print(f"  held-out mean fitness {e['heldout_mean_fitness']:.4f} over {len(e['heldout'])} seed sets")
    print("  " + (e["genome"] or str(e["hyperparameters"])).replace("\n", "\n  "))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--track", default="single_ar")
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--generations", type=int, default=50)
    ap.add_argument("--optimizer", default="adamw")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench")
    ap.add_argument("--baseline-run", type=Path, help="use this baseline run directory (default OUT/baseline-TRACK)")
    ap.add_argument("--evolve-run", type=Path, help="use this evolve run directory (default OUT/evolve-TRACK)")
    ap.add_argument("--no-run", action="store_true", help="only read the two run directories")
    args = ap.parse_args()
    base_dir = args.baseline_run or args.out / f"baseline-{args.optimizer}-{args.track}"
    evo_dir = args.evolve_run or args.out / f"evolve-{args.track}"
    common = [*(["--workers", str(args.workers)] if args.workers else []),
              *(["--steps", str(args.steps)] if args.steps else []), "--seed", str(args.seed)]
    if not args.no_run:
        run("baseline", "--track", args.track, "--optimizer", args.optimizer, "--trials", str(args.trials),
            "--run-dir", str(base_dir), *common)
        run("evolve", "--track", args.track, "--generations", str(args.generations), "--run-dir", str(evo_dir),
            *common)
    with RunDB.open(evo_dir) as search, RunDB.open(base_dir) as baseline:
        result = comparison(search, baseline)
    show_elite(f"baseline ({result['baseline']['optimizer']}, {base_dir})", result["baseline"])
    show_elite(f"search (synth evolve, {evo_dir})", result["search"])
    print("\nbest so far against cost (full-budget-equivalent evaluations)")
    print(f"  {'cost':>7}  {'baseline':<26} {'search':<26}")
    for row in result["table"]:
        cells = [f"{p['verdict']} ({p['fitness']:.4f})" if p and p["fitness"] is not None else "-"
                 for p in (row["baseline"], row["search"])]
        print(f"  {row['cost']:7.1f}  {cells[0]:<26} {cells[1]:<26}")
    s, b = result["search"]["elite"], result["baseline"]["elite"]
    if s and b:
        bench = "search" if s["fitness"] > b["fitness"] else "baseline"
        held = None
        if s["heldout_mean_fitness"] is not None and b["heldout_mean_fitness"] is not None:
            held = "search" if s["heldout_mean_fitness"] > b["heldout_mean_fitness"] else "baseline"
        print(f"\nbenchmark seeds: {bench} wins; held-out mean: {held or 'not scored on both'}")


if __name__ == "__main__":
    main()
