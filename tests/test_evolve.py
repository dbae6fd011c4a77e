"""`synth evolve` end to end through the CLI: determinism, crash-resume, inspection, export."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from primitives.seeds import SEED_PROGRAMS

from tests.conftest import ROOT, synth_cli

SMALL = ["--track", "single_ar", "--steps", "50", "--population", "6", "--seed", "3", "--quiet"]


def candidates(run_dir: Path) -> list[tuple]:
    with sqlite3.connect(run_dir / "synth.db") as conn:
        return conn.execute("SELECT id, generation, operator, genome, parents, status, fitness, fingerprint "
                            "FROM candidates ORDER BY id").fetchall()


def table_rows(run_dir: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(run_dir / "synth.db") as conn:
        return conn.execute(sql).fetchall()


def evaluation_keys(run_dir: Path) -> list[tuple]:
    with sqlite3.connect(run_dir / "synth.db") as conn:
        return conn.execute("SELECT id, candidate_id, track, seed_set, steps, fitness FROM evaluations ORDER BY id").fetchall()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("evolve") / "run"
    proc = synth_cli("evolve", *SMALL, "--generations", "2", "--run-dir", str(path), "--finalists", "1")
    assert proc.returncode == 0, proc.stderr
    return path


def test_run_records_seeds_children_and_lineage(run_dir):
    rows = candidates(run_dir)
    seeds = [r for r in rows if r[2] == "seed"]
    children = [r for r in rows if r[2] != "seed"]
    assert len(seeds) == len(SEED_PROGRAMS) and all(r[1] == 0 for r in seeds)
    assert len(children) >= 12 and {r[1] for r in children} == {1, 2}
    ids = {r[0] for r in rows}
    assert all(set(json.loads(r[4])) <= ids and json.loads(r[4]) for r in children)
    assert all(r[5] in ("scored", "duplicate", "failed", "invalid") for r in rows)


def test_llm_off_is_said_once_and_plainly(tmp_path):
    proc = synth_cli("evolve", *SMALL, "--generations", "0", "--run-dir", str(tmp_path / "r"), "--finalists", "0")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("LLM edits are off") == 1
    assert "--llm openai:MODEL" in proc.stdout


def test_same_seed_same_candidates_in_separate_processes(run_dir, tmp_path):
    again = tmp_path / "again"
    proc = synth_cli("evolve", *SMALL, "--generations", "2", "--run-dir", str(again), "--workers", "1",
                     "--finalists", "0")
    assert proc.returncode == 0, proc.stderr
    assert candidates(again) == candidates(run_dir)  # also across worker counts (2 vs 1)


def test_show_lineage_and_dot(run_dir):
    show = synth_cli("show", str(run_dir), "--json")
    assert show.returncode == 0, show.stderr
    board = json.loads(show.stdout)
    best = board["top"][0]
    assert best["fitness"] == max(r[6] for r in candidates(run_dir) if r[6] is not None)
    assert best["heldout"]["k"] == 3  # the finalist was re-scored on held-out seeds
    lineage = synth_cli("lineage", str(run_dir), "--json")
    chain = json.loads(lineage.stdout)
    assert chain[0]["operator"] == "seed" and chain[-1]["id"] == best["id"]
    assert all(row["diff"] for row in chain[1:] if row["operator"] != "seed")
    dot = synth_cli("lineage", str(run_dir), str(best["id"]), "--dot").stdout
    assert dot.startswith("digraph lineage") and f"n{best['id']}" in dot and ("->" in dot or len(chain) == 1)
    child = max(r[0] for r in candidates(run_dir) if r[2] != "seed")  # the best may be a seed: no edges
    dot = synth_cli("lineage", str(run_dir), str(child), "--dot").stdout
    assert f"n{child}" in dot and "->" in dot
    diff = synth_cli("lineage", str(run_dir), "--diff")
    assert diff.returncode == 0 and ("@@" in diff.stdout or len(chain) == 1)


def test_export_rescores_and_matches_the_database(run_dir, tmp_path):
    out = tmp_path / "best"
    proc = synth_cli("export", str(run_dir), "--out", str(out), "--transfer", "single_ar")
    assert proc.returncode == 0, proc.stderr
    record = json.loads((out / "lineage.json").read_text(), parse_constant=lambda c: pytest.fail(f"bare {c}"))
    assert record["verified_by_rescoring"] is True
    assert record["benchmark_result"]["final_eval_mse"] is None  # NaN on a recall track: null, strict JSON
    assert set(record["compliance"]) == {"heldout", "gradient_dependence", "task_permutation"}
    assert "held-out seed sets (k=3)" in (out / "lineage.md").read_text()
    # the file alone, scored by a fresh process the way the benchmark would, gives the stored score
    fresh = synth_cli("eval", str(out / "submission.py"), "--track", "single_ar", "--steps", "50", "--json")
    assert fresh.returncode == 0, fresh.stderr
    assert json.loads(fresh.stdout)["final_eval_accuracy"] == record["benchmark_result"]["final_eval_accuracy"]
    source = (out / "submission.py").read_text()
    assert "class Submission(torch.optim.Optimizer)" in source


def test_bad_inputs_are_one_line_errors(tmp_path):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "synth.db").write_bytes(b"this is not a database at all")
    before = (tmp_path / "junk" / "synth.db").read_bytes()
    for args in (["show", str(tmp_path / "junk")], ["show", str(tmp_path / "nowhere")],
                 ["evolve", "--track", "nope", "--run-dir", str(tmp_path / "x")],
                 ["evolve", "--population", "4", "--tournament", "9", "--run-dir", str(tmp_path / "y")]):
        proc = synth_cli(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert proc.stderr.strip().count("\n") == 0 and "error:" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
    assert (tmp_path / "junk" / "synth.db").read_bytes() == before


def test_resume_refuses_a_different_experiment(run_dir):
    proc = synth_cli("evolve", "--run-dir", str(run_dir), "--track", "mqar", "--quiet")
    assert proc.returncode == 2
    assert "created with track='single_ar'" in proc.stderr


def test_sigkill_at_random_moments_loses_and_repeats_nothing(run_dir, tmp_path):
    """Five SIGKILLs at random evaluation counts; the finished run equals one never interrupted."""
    reference = tmp_path / "reference"
    args = [*SMALL, "--generations", "3", "--workers", "1", "--finalists", "0"]
    assert synth_cli("evolve", *args, "--run-dir", str(reference)).returncode == 0
    target = evaluation_keys(reference)

    victim = tmp_path / "victim"
    rng = random.Random(7)
    kills = attempts = 0
    while kills < 5 and attempts < 12:  # a restart that finishes before its kill point does not count
        attempts += 1
        proc = subprocess.Popen([sys.executable, "-m", "cli", "evolve", *args, "--run-dir", str(victim)],
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        already = len(evaluation_keys(victim)) if (victim / "synth.db").exists() else 0
        kill_at = min(already + rng.randint(1, 3), len(target) - 1)
        while proc.poll() is None:
            if (victim / "synth.db").exists() and len(evaluation_keys(victim)) >= kill_at:
                os.killpg(proc.pid, signal.SIGKILL)
                kills += 1
                break
            time.sleep(0.02)  # polling the database, not waiting for time to pass
        proc.wait()
    assert kills >= 5
    assert synth_cli("evolve", *args, "--run-dir", str(victim)).returncode == 0
    assert evaluation_keys(victim) == target  # same ids, same candidates, no gaps, no duplicates
    assert candidates(victim) == candidates(reference)


def test_cascade_screens_audits_and_reports(tmp_path):
    run = tmp_path / "cascade"
    proc = synth_cli("evolve", "--track", "single_ar", "--steps", "60", "--proxy-steps", "20", "--population", "6",
                     "--generations", "4", "--seed", "5", "--finalists", "0", "--quiet", "--run-dir", str(run))
    assert proc.returncode == 0, proc.stderr
    with sqlite3.connect(run / "synth.db") as conn:
        rows = [(cid, gen, status, json.loads(gate) if gate else {}, twin) for cid, gen, status, gate, twin in
                conn.execute("SELECT id, generation, status, cascade, duplicate_of FROM candidates")]
        evals = {(c, s): json.loads(r) for c, s, r in conn.execute("SELECT candidate_id, steps, result FROM evaluations")}
    runs = {}
    for cid, steps in evals:
        runs.setdefault(cid, []).append(steps)
    for cid, generation, status, gate, twin in rows:
        if status in ("invalid", "duplicate") or twin is not None:
            assert cid not in runs  # never trained: no probe pass, or its twin's outcome
            continue
        assert gate and gate["steps"] == 20
        assert runs[cid] in ([20], [60])  # one run per child: the gate stops it or it goes on
        result = evals[(cid, runs[cid][0])]
        assert result["gate_metric"] == gate.get("metric")  # None for a run that failed before its gate
        if status == "screened":  # stopped by its gate: the record of a 20-step run
            assert runs[cid] == [20] and result["gated_out"] and not gate["promoted"] and not gate["audit"]
            assert gate["metric"] < gate["threshold"]
        else:
            assert runs[cid] == [60] and not result["gated_out"]
        if generation == 0:
            assert gate["threshold"] is None and runs[cid] == [60]  # seeds always go the distance
        elif gate["audit"] and not gate["promoted"]:  # below the bar, run in full anyway to check the proxy
            assert runs[cid] == [60] and gate["metric"] < gate["threshold"]
    assert any(r[2] == "screened" for r in rows)
    cascade = json.loads(synth_cli("show", str(run), "--json").stdout)["cascade"]
    gated = [r for r in rows if r[1] > 0 and "metric" in r[3] and r[3]["metric"] is not None]
    assert cascade["proxy_steps"] == 20 and cascade["proxied"] == len(gated)
    assert cascade["screened"] == sum(r[2] == "screened" for r in gated)
    assert cascade["audited"] == sum(r[3]["audit"] and not r[3]["promoted"]
                                     for r in gated)
    fitness = dict(table_rows(run, "SELECT id, fitness FROM candidates"))
    sample = [(r[0], r[3]) for r in gated if r[3]["audit"]]
    good = [(cid, g) for cid, g in sample if fitness[cid] is not None and fitness[cid] >= g["full_bar"]]
    assert cascade["audit_sample"] == len(sample) > 0 and cascade["audit_good"] == len(good)
    assert cascade["wrongly_dropped_ids"] == [cid for cid, g in good if not g["promoted"]]
    full_runs = sum(1 for r in gated if r[2] != "screened")
    assert cascade["training_steps_saved"] == pytest.approx(1 - (cascade["screened"] * 20 + full_runs * 60)
                                                            / (len(gated) * 60))
    assert 0 < cascade["training_steps_saved"] < 1


def test_robust_fitness_is_the_mean_over_search_seed_sets(tmp_path):
    run = tmp_path / "robust"
    proc = synth_cli("evolve", "--track", "single_ar", "--steps", "40", "--population", "4", "--generations", "1",
                     "--robust", "2", "--finalists", "0", "--workers", "1", "--quiet", "--json", "--run-dir", str(run))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["evaluations"] > 0  # --json: stdout is the summary alone
    with sqlite3.connect(run / "synth.db") as conn:
        scored = conn.execute("SELECT id, fitness FROM candidates WHERE status = 'scored'").fetchall()
        assert scored
        for cid, fit in scored:
            per_set = dict(conn.execute("SELECT seed_set, fitness FROM evaluations WHERE candidate_id = ?", (cid,)))
            assert set(per_set) == {"benchmark", "search-1"}
            assert fit == pytest.approx(sum(per_set.values()) / 2)
