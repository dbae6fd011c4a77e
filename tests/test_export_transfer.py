"""`synth export`: the transfer table (every track, benchmark and held-out seeds), re-scoring on the
run's own device and limits, verdicts kept in the run, and lineage.json's published schema."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from synth.winners.lineage_model import LineageRecord, schema_text
from synth.winners.transfer import parse_seed_kinds, parse_tracks, scoring_limits, transfer_steps
from tests.conftest import ROOT, synth_cli

SCHEMA = ROOT / "docs" / "lineage.schema.json"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A short single_ar run with a non-default --timeout and --steps: its export must use both."""
    path = tmp_path_factory.mktemp("transfer") / "run"
    proc = synth_cli("evolve", "--track", "single_ar", "--steps", "30", "--timeout", "45", "--population", "4",
                     "--generations", "0", "--seed", "1", "--finalists", "0", "--quiet", "--run-dir", str(path))
    assert proc.returncode == 0, proc.stderr
    return path


def read_record(out: Path) -> dict:
    data = json.loads((out / "lineage.json").read_text(), parse_constant=lambda c: pytest.fail(f"bare {c}"))
    LineageRecord.model_validate(data)  # the file matches its published schema's model
    return data


def state_keys(run_dir: Path, prefix: str) -> dict[str, dict]:
    conn = sqlite3.connect(run_dir / "synth.db")
    try:
        return {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM state WHERE key LIKE ?",
                                                          (prefix + "%",))}
    finally:
        conn.close()


def test_export_scores_other_tracks_on_benchmark_and_heldout_seeds(run_dir, tmp_path):
    out = tmp_path / "best"
    proc = synth_cli("export", str(run_dir), "--out", str(out), "--transfer", "mqar,single_ar")
    assert proc.returncode == 0, proc.stderr
    record = read_record(out)
    rows = {row["track"]: row for row in record["transfer"]}
    assert list(rows) == ["single_ar", "mqar"]  # cheap tracks first, whatever order was asked
    own, other = rows["single_ar"], rows["mqar"]
    # the run's own track: the search score and the finalist checks' held-out runs, read not re-run
    assert own["benchmark"]["final_metric"] == record["benchmark_result"]["final_eval_accuracy"]
    assert own["heldout"]["mean"] == pytest.approx(record["heldout"]["mean"])
    # another track: really trained there (an untrained recall model sits at chance, 1/64)
    assert other["steps"] == 30 and not other["benchmark_budget"] and other["device"] == "cpu"
    assert other["benchmark"]["outcome"] == "ok" and other["benchmark"]["final_metric"] > 2 / 64
    assert other["heldout"]["k"] == 3 and other["heldout"]["scored"] == 3
    assert len(set(other["heldout"]["values"])) == 3  # three different seed sets, three different scores
    stored = state_keys(run_dir, f"transfer/{record['candidate']}/")
    assert sorted(stored) == sorted(f"transfer/{record['candidate']}/mqar/{s}/30/cpu"
                                    for s in ("benchmark", "heldout-1", "heldout-2", "heldout-3"))
    assert {v["seed_set"] for v in stored.values()} == {"benchmark", "heldout-1", "heldout-2", "heldout-3"}
    table = (out / "lineage.md").read_text()
    assert "## Transfer: every track" in table and "| single_ar (evolved on) | 30" in table
    assert f"| mqar | 30 (not the benchmark's budget) | {other['benchmark']['verdict']} |" in table


def test_export_rescores_with_the_runs_steps_and_timeout(run_dir, tmp_path):
    out = tmp_path / "best"
    proc = synth_cli("export", str(run_dir), "--out", str(out), "--transfer", "none")
    assert proc.returncode == 0, proc.stderr
    record = read_record(out)
    assert record["verified_by_rescoring"] and record["transfer"] == []
    assert record["rescored_with"] == {"device": "cpu", "steps": 30, "timeout_s": 45.0, "memory_mb": 4096}
    # the limit really applies: the same run with a timeout no candidate can meet cannot verify
    tight = tmp_path / "tight"
    shutil.copytree(run_dir, tight)
    conn = sqlite3.connect(tight / "synth.db")
    with conn:
        config = json.loads(conn.execute("SELECT config FROM run").fetchone()[0])
        conn.execute("UPDATE run SET config = ?", (json.dumps({**config, "timeout_s": 0.05}),))
    conn.close()
    proc = synth_cli("export", str(tight), "--out", str(tmp_path / "no"), "--transfer", "none")
    assert proc.returncode == 1, proc.stdout
    assert "re-scored on cpu as timeout" in proc.stderr and not (tmp_path / "no" / "submission.py").exists()


def test_second_export_reads_stored_verdicts_instead_of_paying_again(run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    args = ("--transfer", "mqar", "--transfer-seeds", "benchmark")
    assert synth_cli("export", str(run), "--out", str(tmp_path / "first"), *args).returncode == 0
    cand = read_record(tmp_path / "first")["candidate"]
    key = f"transfer/{cand}/mqar/benchmark/30/cpu"
    marked = {**state_keys(run, key)[key], "final_eval_accuracy": 0.123456}
    conn = sqlite3.connect(run / "synth.db")
    with conn:
        conn.execute("UPDATE state SET value = ? WHERE key = ?", (json.dumps(marked), key))
    conn.close()
    proc = synth_cli("export", str(run), "--out", str(tmp_path / "second"), *args)
    assert proc.returncode == 0, proc.stderr
    assert read_record(tmp_path / "second")["transfer"][0]["benchmark"]["final_metric"] == 0.123456  # read, not re-run


def test_bad_transfer_flags_are_one_line_errors(run_dir, tmp_path):
    for flag, value in (("--transfer", "nope"), ("--transfer", ","), ("--transfer-seeds", "search")):
        proc = synth_cli("export", str(run_dir), "--out", str(tmp_path / "x"), flag, value)
        assert proc.returncode == 2, proc.stdout
        assert proc.stderr.strip().count("\n") == 0 and "error:" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x").exists()


def test_eval_device_is_checked_before_anything_runs(tmp_path):
    (tmp_path / "s.py").write_text("import torch\n")
    for device in ("gpu", "cpu,cuda:0", "cuda:x"):
        proc = synth_cli("eval", str(tmp_path / "s.py"), "--track", "single_ar", "--device", device)
        assert proc.returncode == 2 and "error:" in proc.stderr and proc.stderr.strip().count("\n") == 0, proc.stderr


def test_transfer_choices_and_limits():
    assert parse_tracks("all") == ["single_ar", "mqar", "random_teacher"] and parse_tracks("none") == []
    assert parse_seed_kinds("heldout,benchmark") == ["benchmark", "heldout"]
    config = {"track": "single_ar", "timeout_s": 45.0, "memory_mb": 2048, "steps": None}
    assert scoring_limits(config, "single_ar").timeout_for("single_ar") == 45.0
    assert scoring_limits(config, "random_teacher").timeout_for("random_teacher") == 1200.0  # its own default
    assert scoring_limits(config, "mqar").memory_mb == 2048
    assert transfer_steps(config, "random_teacher", None) == 400
    assert transfer_steps({**config, "steps": 30}, "mqar", None) == 30
    assert transfer_steps({**config, "steps": 30}, "mqar", 7) == 7


def test_published_schema_is_current():
    """docs/lineage.schema.json is generated from synth/winners/lineage_model.py; a stale copy is rewritten
    here and the test fails, so the change gets committed."""
    current = schema_text()
    if not SCHEMA.exists() or SCHEMA.read_text() != current:
        SCHEMA.write_text(current)
        pytest.fail(f"{SCHEMA} was stale and has been regenerated: commit it")


@pytest.mark.slow
def test_default_export_covers_random_teacher(run_dir, tmp_path):
    out = tmp_path / "all"
    proc = synth_cli("export", str(run_dir), "--out", str(out), "--transfer-steps", "3",
                     "--transfer-seeds", "benchmark")
    assert proc.returncode == 0, proc.stderr
    rows = {row["track"]: row for row in read_record(out)["transfer"]}
    assert list(rows) == ["single_ar", "mqar", "random_teacher"]
    teacher = rows["random_teacher"]
    assert teacher["metric"] == "final_eval_mse" and teacher["benchmark"]["outcome"] == "ok"
    assert teacher["benchmark"]["final_metric"] > 0 and teacher["steps"] == 3
