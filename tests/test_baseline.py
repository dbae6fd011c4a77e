"""`synth baseline`: Optuna trials are candidates of a run database, scored by the sandboxed pool and
the cascade, resumable after a SIGKILL without repeating a trial, and readable by show/export."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT, synth_cli

# short runs: 30 steps gated at 10, two trials per sampler batch, one worker
SMALL = ["--track", "single_ar", "--steps", "30", "--proxy-steps", "10", "--batch", "2", "--workers", "1",
         "--finalists", "0", "--seed", "3", "--quiet"]
TRIALS = "8"


def table(run_dir: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(run_dir / "synth.db") as conn:
        return conn.execute(sql).fetchall()


TRIALS_QUERY = "SELECT id, operator, operator_params, source, status, fitness FROM candidates ORDER BY id"


def test_a_killed_study_resumes_without_repeating_a_trial(tmp_path):
    run, reference = tmp_path / "run", tmp_path / "reference"
    args = ["baseline", *SMALL, "--trials", TRIALS]
    proc = subprocess.Popen([sys.executable, "-m", "cli", *args, "--run-dir", str(run)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while not (run / "synth.db").exists() or table(run, "SELECT count(*) FROM evaluations") < [(3,)]:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)  # polling until the study is part done
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = table(run, "SELECT id, operator_params FROM candidates WHERE status != 'pending' ORDER BY id")
    assert 3 <= len(before) < int(TRIALS)
    resumed = synth_cli(*args, "--run-dir", str(run))
    assert resumed.returncode == 0, resumed.stderr
    # every trial finished before the kill kept its evaluation; none was drawn or scored twice
    assert table(run, "SELECT id, operator_params FROM candidates ORDER BY id")[:len(before)] == before
    assert table(run, "SELECT count(*), count(DISTINCT candidate_id) FROM evaluations") == [(int(TRIALS),) * 2]
    # and the study went on as the uninterrupted one did: same seed, same trials, same scores
    assert synth_cli(*args, "--run-dir", str(reference)).returncode == 0
    assert table(run, TRIALS_QUERY) == table(reference, TRIALS_QUERY)
    different = tmp_path / "other-seed"
    assert synth_cli(*[a if a != "3" else "4" for a in args], "--run-dir", str(different)).returncode == 0
    assert table(different, "SELECT source FROM candidates") != table(run, "SELECT source FROM candidates")


def test_trials_are_recorded_shown_and_exported(tmp_path):
    run = tmp_path / "run"
    done = synth_cli("baseline", *SMALL, "--trials", "4", "--optimizer", "lion", "--run-dir", str(run), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["trials"] == 4 and summary["optimizer"] == "lion"
    rows = table(run, "SELECT operator, operator_params, source, status FROM candidates ORDER BY id")
    assert [r[0] for r in rows] == ["tune"] * 4
    for _, params, source, status in rows:
        hp = json.loads(params)["hyperparameters"]
        assert set(hp) == {"lr", "beta1", "beta2", "weight_decay"}
        assert f"lr={hp['lr']!r}" in source  # the file is the trial, its numbers written in
        assert status in ("scored", "screened")
    board = synth_cli("show", str(run), "--json")
    assert board.returncode == 0, board.stderr
    best = json.loads(board.stdout)["top"][0]
    assert best["operator"] == "tune" and best["id"] == summary["best"]["id"]
    out = tmp_path / "best"
    exported = synth_cli("export", str(run), "--out", str(out), "--transfer", "single_ar")  # re-scores, checks
    assert exported.returncode == 0, exported.stderr
    scored = table(run, f"SELECT source FROM candidates WHERE id = {best['id']}")[0][0]
    exported = (out / "submission.py").read_text()  # the scored file, its docstring led by its identity
    assert exported.startswith(f'"""synth candidate #{best["id"]} on single_ar') and exported.endswith(scored[3:])
    assert json.loads((out / "lineage.json").read_text())["benchmark_result"]["steps"] == 30


def test_a_study_refuses_to_change_what_it_is(tmp_path):
    run = tmp_path / "run"
    bad = synth_cli("baseline", *SMALL, "--optimizer", "adamax", "--run-dir", str(run))
    assert bad.returncode == 2 and "optimizer" in bad.stderr and not run.exists()
    assert synth_cli("baseline", *SMALL, "--trials", "1", "--run-dir", str(run)).returncode == 0
    other = synth_cli("baseline", *SMALL, "--trials", "2", "--optimizer", "sgd", "--run-dir", str(run))
    assert other.returncode == 2 and "created with optimizer='adamw'" in " ".join(other.stderr.split())
    assert table(run, "SELECT count(*) FROM candidates") == [(1,)]
    evolve = synth_cli("evolve", "--run-dir", str(run), "--quiet")
    assert evolve.returncode == 2, evolve.stderr


def recall_run(run: Path, config: dict, runs: list[tuple[int, int, str, list[float]]]) -> Path:
    """A hand-made run: per candidate (id order) its evaluation's steps, status and eval curve (every 10 steps)."""
    from population.db import RunDB
    from population.records import Candidate, Evaluation

    with RunDB.create(run, {"track": "single_ar", "steps": 40, "proxy_steps": 10, **config}) as db:
        for n, (steps, pass_step, status, curve) in enumerate(runs):
            [cand] = [Candidate(generation=1, kind="code", source=f"# {n}\n", operator="tune")]
            db.add_candidates([cand])
            result = {"track": "single_ar", "max_steps": steps, "eval_every": 10, "train_samples": 1,
                      "eval_samples": 1, "batch_size": 1, "status": status, "steps": pass_step,
                      "final_eval_accuracy": curve[-1], "curve": [{"step": 10 * i, "metric": m, "loss": 1.0}
                                                                  for i, m in enumerate(curve)]}
            db.add_evaluation(Evaluation(candidate_id=cand.id, track="single_ar", seed_set="benchmark", budget=steps,
                                         outcome="ok", fitness=0.0, result=result), "scored", 0.0)
    return run


def test_comparison_counts_cascade_savings_and_ranks_passes_by_the_earlier_point(tmp_path):
    from population.db import RunDB
    from synth.baseline.compare import comparison
    from synth.reporting.html import write_report

    # search: a run screened at step 10 (a quarter of the budget), then a pass at 30 that was at 0.95 at 20
    search = recall_run(tmp_path / "search", {}, [(10, 10, "fail", [0.0, 0.2]),
                                                  (40, 30, "pass", [0.0, 0.5, 0.95, 0.99])])
    # baseline: a pass at 30 that was at 0.90 at 20, though higher on average, and a pass at 40
    baseline = recall_run(tmp_path / "baseline", {"kind": "baseline", "optimizer": "adamw"},
                          [(40, 40, "pass", [0.0, 0.9, 0.95, 0.98, 0.99]), (40, 30, "pass", [0.0, 0.98, 0.90, 0.995])])
    with RunDB.open(search) as s, RunDB.open(baseline) as b:
        result = comparison(s, b, marks=2)
        assert result["search"]["cost"] == 1.25 and result["baseline"]["cost"] == 2.0
        assert result["search"]["elite"]["id"] == 2 and result["baseline"]["elite"]["id"] == 2
        assert result["search"]["elite"]["fitness"] > result["baseline"]["elite"]["fitness"]
        assert [row["baseline"]["id"] for row in result["table"]] == [1, 2]  # best so far at cost 1, then 2
        page = write_report(s, tmp_path / "report.html", baseline=b).read_text()
    assert 'id="baseline-comparison"' in page and "pass @ 30" in page
