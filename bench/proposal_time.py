"""What proposing one child costs in database work, at 1k and at 20k candidates (issue 15).

Builds two synthetic run databases with realistic rows (rendered seed programs as sources, program
text, tune trials, one evaluation per finished candidate with a full EvalResult-sized JSON) and times:

1. before: the engine's old DB work for a proposal (every alive row loaded, with its source, and
   filtered in Python; a root's tune trials found by loading every candidate);
2. after: the same answers from RunDB's window queries (population/window.py);
3. the whole `Evolution._one_child` path plus the `_refresh_progress` that follows each commit,
   with the probe answered in-process (a sandbox probe costs the same at any size and would hide
   the database's share).

Prints ms per proposal (median of --repeat) and the 20k/1k ratio. Target: after, 20k within 2x of 1k.
Usage: python bench/proposal_time.py [--sizes 1000 20000] [--repeat 30]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evaluator.probe import ProbeResult  # noqa: E402
from evaluator.record import EvalPoint, EvalResult  # noqa: E402
from population.db import RunDB  # noqa: E402
from population.records import Candidate  # noqa: E402
from population.selection import ALIVE_STATUSES, alive  # noqa: E402
from primitives.seeds import seed_programs  # noqa: E402
from synth.config import RunConfig  # noqa: E402
from synth.search.engine import Evolution  # noqa: E402
from synth.genetic.tune import TRIALS_PER_ROOT, constant_sites  # noqa: E402

CONFIG = RunConfig(track="single_ar", population=16, elites=2, seed=0, steps=400, finalists=0)
TUNED_ROOT = 20  # a child whose structure has tune trials in every database built here
STATUS_MIX = ["scored"] * 6 + ["duplicate", "failed", "screened", "invalid"]


def build(run_dir: Path, n: int, seed: int = 0) -> RunDB:
    """n candidates: the nine seeds, then children in a realistic mix of statuses and operators."""
    rng = random.Random(seed)
    programs = list(seed_programs().items())
    db = RunDB.create(run_dir, CONFIG.model_dump(mode="json"))
    cands, roots, trials = [], [], {}  # roots: ids of children that a tune trial may start from
    for i in range(1, n + 1):
        name, program = programs[(i - 1) % len(programs)]
        is_seed = i <= len(programs)
        status = "scored" if is_seed else rng.choice(STATUS_MIX)
        operator, params = ("seed", {"name": name}) if is_seed else ("mutate_node", {"index": rng.randrange(40)})
        if not is_seed and roots and rng.random() < 0.2:  # a trial of a root with fewer than TRIALS_PER_ROOT
            root = rng.choice(roots)
            trials[root] = trials.get(root, 0) + 1
            if trials[root] == TRIALS_PER_ROOT:
                roots.remove(root)
            program = programs[(root - 1) % len(programs)][1]
            factors = {f"c{j}": rng.uniform(-1, 1) for j in range(len(constant_sites(program)))}
            operator, params = "tune", {"root": root, "trial": trials[root], "factors": factors}
        elif not is_seed:
            roots.append(i)
        fitness = rng.random() if status in ALIVE_STATUSES else None
        cands.append(Candidate(generation=0 if is_seed else 1 + (i - 10) // CONFIG.population, genome=program.to_text(),
                               source=program.render(title=f"synth single_ar candidate {i}, operator {operator}"),
                               parents=[] if is_seed else [rng.randrange(1, i)], operator=operator,
                               operator_params=params, fingerprint=f"{rng.getrandbits(64):016x}", status=status,
                               fitness=fitness, timings={"probe_s": 0.1}))
    db.add_candidates(cands)
    result = EvalResult(track="single_ar", max_steps=400, eval_every=10, train_samples=4096, eval_samples=512,
                        batch_size=64, final_eval_accuracy=0.5,
                        curve=[EvalPoint(step=s, metric=rng.random(), loss=rng.random()) for s in range(0, 401, 10)])
    result_json = json.dumps(result.model_dump(mode="json"))
    with db._write() as conn:  # one transaction: 20k separate commits would be 20k fsyncs
        conn.executemany("INSERT INTO evaluations (candidate_id, track, seed_set, steps, outcome, fitness, result, "
                         "created_at) VALUES (?, 'single_ar', 'benchmark', 400, ?, ?, ?, 0)",
                         [(c.id, "ok" if c.status != "failed" else "crash", c.fitness,
                           result_json)
                          for c in cands if c.status != "invalid"])
    return db


def old_db_work(db: RunDB, horizon: int) -> None:
    """The engine's proposal before the window queries: every alive row, then every candidate for tune."""
    visible = [c for status in ALIVE_STATUSES for c in db.candidates(status=status)
               if c.generation == 0 or c.id < horizon]
    alive(visible, CONFIG.population, CONFIG.elites)
    [c for c in visible if c.generation == 0 and c.genome]
    [c for c in db.candidates() if c.operator == "tune" and c.operator_params.get("root") == TUNED_ROOT]


def new_db_work(db: RunDB, horizon: int) -> None:
    db.alive(horizon, CONFIG.population, CONFIG.elites)
    db.seeds_to_tune()
    db.tune_trials(TUNED_ROOT)


class InProcessProbe:
    """Stands in for the sandbox pool's probe: every child is alive and new."""

    size = 1

    def probe(self, source: str) -> ProbeResult:
        return ProbeResult(f"{hash(source):x}", None)


def median_ms(fn, repeat: int) -> float:
    fn()  # warm the page cache and the statement cache
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def measure(n: int, repeat: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        db = build(Path(tmp) / "run", n)
        horizon = db.count() + 1 - CONFIG.population
        engine = Evolution(db, CONFIG, InProcessProbe())
        engine.children = n  # past seed tuning, as deep in a run

        def one_proposal():
            engine._one_child()
            engine._refresh_progress()

        figures = {"before": median_ms(lambda: old_db_work(db, horizon), max(repeat // 5, 3)),
                   "after": median_ms(lambda: new_db_work(db, horizon), repeat),
                   "one_child": median_ms(one_proposal, repeat)}
        db.close()
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 20000])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    results = {n: measure(n, args.repeat) for n in args.sizes}
    print(f"{'candidates':>10}  {'before (ms)':>11}  {'after (ms)':>10}  {'_one_child + refresh (ms)':>25}")
    for n, f in results.items():
        print(f"{n:>10}  {f['before']:>11.2f}  {f['after']:>10.2f}  {f['one_child']:>25.2f}")
    small, large = results[min(results)], results[max(results)]
    for key in ("before", "after", "one_child"):
        print(f"ratio {max(results)}/{min(results)} {key}: {large[key] / small[key]:.2f}x")


if __name__ == "__main__":
    main()
