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


def test_killing_a_ray_worker_mid_run_loses_no_candidate(tmp_path):
    """SIGKILL one actor's process while candidates run: Ray restarts it, its job is re-queued, and
    the run database is the one an undisturbed local run makes."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import ROOT

    args = ["--track", "single_ar", "--generations", "2", "--steps", "200", "--population", "4", "--seed", "11",
            "--finalists", "0", "--quiet"]
    ray_run, local_run = tmp_path / "ray", tmp_path / "local"
    proc = subprocess.Popen([sys.executable, "-m", "cli", "evolve", *args, "--backend", "ray", "--workers", "2",
                             "--run-dir", str(ray_run)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def actors() -> list[int]:
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if f.read().startswith(b"ray::SlotActor"):
                        found.append(int(pid))
            except OSError:
                pass
        return found

    while not (ray_run / "synth.db").exists() or len(rows(ray_run)[1]) < 3 or not actors():
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        time.sleep(0.05)  # polling the run database, not waiting for time to pass
    os.kill(actors()[0], signal.SIGKILL)
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-2000:]
    assert synth_cli("evolve", *args, "--run-dir", str(local_run)).returncode == 0
    assert rows(ray_run) == rows(local_run)
