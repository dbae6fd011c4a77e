"""Steady-state evolution through the CLI: no generation barrier, a window fixed by ids (hence
determinism), a wall-clock budget, and a Ctrl-C that does not wait for the candidates in flight."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT, synth_cli

# gated runs of 10 steps next to full runs of 200: children take very different times
VARIED = ["--track", "single_ar", "--steps", "200", "--proxy-steps", "10", "--population", "5", "--seed", "2",
          "--finalists", "0", "--workers", "2", "--quiet"]


def table(run_dir: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(run_dir / "synth.db") as conn:
        return conn.execute(sql).fetchall()


def test_children_are_proposed_while_slower_ones_still_run(tmp_path):
    run = tmp_path / "run"
    proc = synth_cli("evolve", *VARIED, "--generations", "4", "--run-dir", str(run))
    assert proc.returncode == 0, proc.stderr
    cands = {cid: (gen, created, json.loads(parents)) for cid, gen, created, parents in
             table(run, "SELECT id, generation, created_at, parents FROM candidates")}
    finished = dict(table(run, "SELECT candidate_id, max(created_at) FROM evaluations GROUP BY candidate_id"))
    # no barrier: a child of a later generation was made before some earlier-generation child was scored
    assert any(cands[b][0] > cands[a][0] > 0 and cands[b][1] < finished[a]
               for a in finished for b in cands)
    # the window: a child's parents are seeds or at least `population` ids older, whatever finished first
    for cid, (gen, _, parents) in cands.items():
        assert all(cands[p][0] == 0 or p < cid - 5 for p in parents), (cid, parents)


def test_time_budget_stops_proposing_and_the_same_command_goes_on(tmp_path):
    run = tmp_path / "run"
    args = ["evolve", *VARIED, "--generations", "2", "--run-dir", str(run), "--json"]
    first = synth_cli(*args, "--time-budget", "0")
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["stopped_by"] == "time budget" and summary["children"] == 0
    assert "stopped by the time budget" in first.stderr
    assert table(run, "SELECT count(*) FROM candidates WHERE status = 'pending'") == [(0,)]  # seeds were scored
    second = synth_cli(*args)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["children"] == 10 and json.loads(second.stdout)["stopped_by"] is None
    reference = tmp_path / "reference"
    assert synth_cli("evolve", *VARIED, "--generations", "2", "--run-dir", str(reference)).returncode == 0
    query = "SELECT id, operator, genome, parents, status, fitness FROM candidates ORDER BY id"
    assert table(run, query) == table(reference, query)  # a budgeted stop changes nothing but when


def test_ctrl_c_stops_at_once_and_keeps_what_is_finished(tmp_path):
    """Seeds of 20,000 steps (minutes each): Ctrl-C must kill them, not wait for them."""
    run = tmp_path / "run"
    # a terminal's foreground process gets SIGINT's default action, whatever this test runner inherited
    # (a background job of a non-interactive shell starts with SIGINT ignored)
    proc = subprocess.Popen([sys.executable, "-m", "cli", "evolve", "--track", "single_ar", "--steps", "20000",
                             "--proxy-steps", "0", "--workers", "1", "--finalists", "0", "--quiet",
                             "--run-dir", str(run)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        while not (run / "synth.db").exists() or not table(run, "SELECT 1 FROM state WHERE key = 'engine'"):
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)  # polling for the seeds to be committed (then dispatched at once)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=90)  # far less than one seed's run
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130, stderr
    assert f"Resume with: synth evolve --run-dir {run}" in " ".join(stderr.split())
    assert table(run, "SELECT count(*) FROM evaluations") == [(0,)]  # the killed run was not recorded
    assert table(run, "SELECT DISTINCT status FROM candidates") == [("pending",)]  # and is scored on resume
    assert synth_cli("show", str(run), "--json").returncode == 0
