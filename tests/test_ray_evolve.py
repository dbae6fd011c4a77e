"""`synth evolve --backend ray` against a real local Ray instance: same run database as local."""

import sqlite3

import pytest

from tests.conftest import synth_cli

pytest.importorskip("ray")

ARGS = ["--track", "single_ar", "--generations", "3", "--steps", "40", "--population", "4", "--seed", "11",
        "--finalists", "0", "--quiet"]


def rows(run_dir):
    with sqlite3.connect(run_dir / "synth.db") as conn:
        cands = conn.execute("SELECT id, generation, operator, genome, status, fitness FROM candidates ORDER BY id").fetchall()
        evals = sorted(conn.execute("SELECT candidate_id, track, seed_set, steps, outcome, fitness FROM evaluations"))
    return cands, evals


def test_ray_backend_run_equals_local_run(tmp_path):
    ray_run, local_run = tmp_path / "ray", tmp_path / "local"
    proc = synth_cli("evolve", *ARGS, "--backend", "ray", "--workers", "2", "--run-dir", str(ray_run))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert synth_cli("evolve", *ARGS, "--run-dir", str(local_run)).returncode == 0
    ray_cands, ray_evals = rows(ray_run)
    assert ray_cands and ray_evals
    assert (ray_cands, ray_evals) == rows(local_run)  # same candidates, same scores, bit for bit
