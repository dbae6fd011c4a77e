"""A newcomer's first hour (issue 17): bad input gets one line and exit 2, and what is printed is true.

Every CLI call runs in a fresh process; one small real run (two seeds, single_ar, 50 steps) is shared.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from population.db import RunDB
from population.records import Candidate
from synth.reporting.queries import edge_diff
from tests.conftest import synth_cli

TINY = ["--track", "single_ar", "--steps", "50", "--population", "3", "--tournament", "2", "--seed", "1",
        "--heldout", "1"]


def tiny_config(tmp: Path) -> Path:
    path = tmp / "tiny.toml"
    path.write_text('seeds = ["adam", "lion"]\nelites = 1\n')
    return path


def one_line_error(proc) -> str:
    """The stderr of a refused command: exit 2, one line, no traceback."""
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    return proc.stderr


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, str]:
    """(run dir, stdout) of a small run made with the live view on and stdout piped."""
    tmp = tmp_path_factory.mktemp("first-hour")
    run_dir = tmp / "run"
    proc = synth_cli("evolve", *TINY, "--config", str(tiny_config(tmp)), "--generations", "1", "--finalists", "1",
                     "--run-dir", str(run_dir), env={"COLUMNS": "100"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return run_dir, proc.stdout


# ---------------------------------------------------------------------------- refusals before anything is stored
def test_unknown_device_is_one_line_and_stores_nothing(tmp_path):
    err = one_line_error(synth_cli("evolve", *TINY, "--devices", "gpu", "--run-dir", str(tmp_path / "r")))
    assert "unknown device 'gpu'" in err
    assert not (tmp_path / "r").exists()


def test_cuda_device_this_torch_lacks_is_refused_before_the_run_exists(tmp_path):
    import torch

    device = f"cuda:{torch.cuda.device_count()}"  # on a CPU-only torch cuda:0; on a GPU machine one past the last
    err = one_line_error(synth_cli("evolve", *TINY, "--devices", device, "--run-dir", str(tmp_path / "r")))
    assert device in err and ("--devices cpu" in err or "does not exist" in err)
    assert not (tmp_path / "r").exists()


def test_run_stored_with_a_missing_device_resumes_on_cpu(tmp_path):
    """A run dir an older synth left with devices cuda:0: a plain resume says so in one line, and
    `--devices cpu` resumes it."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this torch has CUDA: cuda:0 is not missing here")
    run_dir = tmp_path / "old"
    RunDB.create(run_dir, {"track": "single_ar", "steps": 50, "devices": "cuda:0", "seeds": ["adam"],
                           "population": 2, "tournament": 1, "elites": 1, "generations": 0, "finalists": 0}).close()
    assert "cuda:0" in one_line_error(synth_cli("evolve", "--run-dir", str(run_dir)))
    proc = synth_cli("evolve", "--run-dir", str(run_dir), "--devices", "cpu", "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with sqlite3.connect(run_dir / "synth.db") as conn:
        assert conn.execute("SELECT status FROM candidates").fetchall() == [("scored",)]


def test_ray_backend_without_ray_is_one_line(tmp_path):
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(
        "import sys\n"
        "class HideRay:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'ray' or name.startswith('ray.'):\n"
        "            raise ModuleNotFoundError(\"No module named 'ray'\")\n"
        "sys.meta_path.insert(0, HideRay())\n")
    proc = synth_cli("evolve", *TINY, "--backend", "ray", "--run-dir", str(tmp_path / "r"),
                     env={"PYTHONPATH": str(shim)})
    assert "needs Ray" in one_line_error(proc)
    assert not (tmp_path / "r").exists()


def test_missing_prompts_dir_is_refused(tmp_path):
    err = one_line_error(synth_cli("evolve", *TINY, "--prompts", "/nonexistent", "--run-dir", str(tmp_path / "r")))
    assert "/nonexistent" in err and not (tmp_path / "r").exists()


def test_new_run_refuses_a_folder_holding_other_files(tmp_path):
    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "chapter1.tex").write_text("...")
    assert "not empty" in one_line_error(synth_cli("evolve", *TINY, "--run-dir", str(folder)))
    assert sorted(p.name for p in folder.iterdir()) == ["chapter1.tex"]


def test_show_a_file_says_it_is_a_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("x")
    assert "is a file, not a run directory" in one_line_error(synth_cli("show", str(path)))


def test_plot_svg_is_svg_and_unknown_suffix_is_refused(run, tmp_path):
    run_dir, _ = run
    proc = synth_cli("plot", str(run_dir), "--out", str(tmp_path / "p.svg"))
    assert proc.returncode == 0, proc.stderr
    assert b"<svg" in (tmp_path / "p.svg").read_bytes()[:400]
    assert ".jpgx" in one_line_error(synth_cli("plot", str(run_dir), "--out", str(tmp_path / "p.jpgx")))


def test_tracks_fit_80_columns():
    proc = synth_cli("tracks", env={"COLUMNS": "80"})
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines) and "…" not in proc.stdout
    assert any(line.startswith("random_teacher") and "MSE <= 4e-07" in line for line in lines)


# ---------------------------------------------------------------------------- what a run prints
def test_piped_output_keeps_the_program_panel_on_its_own_lines(run):
    _, out = run
    assert "╯" in out
    assert all(line.rstrip().endswith("╯") for line in out.splitlines() if "╯" in line), out


def test_start_line_says_everything_that_defines_the_run(run):
    _, out = run
    start = " ".join(" ".join(out.split("starting run", 1)[1].splitlines()[:3]).split())
    for fact in ("track single_ar", "50 steps", "1 generation of 3", "seed 1", "worker", "cascade off"):
        assert fact in start, start


def test_quiet_resume_prints_a_summary_of_this_session_only(run):
    run_dir, _ = run
    proc = synth_cli("evolve", "--run-dir", str(run_dir), "--quiet")
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())  # rich wraps long lines at the terminal's width
    assert "resuming run" in text and "50 steps" in text  # a quick run's settings are visible
    assert "summary" in text and "this session: 0 evaluations" in text
    data = json.loads(synth_cli("evolve", "--run-dir", str(run_dir), "--json").stdout)
    assert data["evaluations"] == 0 and data["evaluations_total"] > 0


def test_diff_keeps_the_last_line_apart():
    parent = Candidate(id=1, generation=0, genome="s0 = g\nupdate = scale(g, -0.01)", source="x", operator="seed")
    child = Candidate(id=2, generation=1, genome="s0 = g\nupdate = scale(g, -0.0122)", source="x",
                      operator="perturb_constants", parents=[1])
    diff = edge_diff(parent, child).splitlines()
    assert "-update = scale(g, -0.01)" in diff and "+update = scale(g, -0.0122)" in diff


def test_lineage_diffs_end_every_line(run):
    run_dir, _ = run
    with sqlite3.connect(run_dir / "synth.db") as conn:
        child = conn.execute("SELECT max(id) FROM candidates WHERE generation > 0").fetchone()[0]
    chain = json.loads(synth_cli("lineage", str(run_dir), str(child), "--json").stdout)
    assert len(chain) >= 2
    for row in chain[1:]:
        assert row["diff"] == "" or row["diff"].endswith("\n")
        assert all(line.count(" = ") <= 1 for line in row["diff"].splitlines())


# ---------------------------------------------------------------------------- export
def test_export_refuses_a_file_an_unwritable_path_and_an_earlier_export(run, tmp_path):
    run_dir, _ = run
    afile = tmp_path / "taken.txt"
    afile.write_text("mine")
    assert "is a file" in one_line_error(synth_cli("export", str(run_dir), "--out", str(afile)))
    assert afile.read_text() == "mine"
    assert "cannot write" in one_line_error(synth_cli("export", str(run_dir), "--out", str(afile / "best")))

    best = tmp_path / "best"
    first = synth_cli("export", str(run_dir), "--out", str(best), "--transfer", "single_ar")
    assert first.returncode == 0, first.stdout + first.stderr
    source = (best / "submission.py").read_text()
    best_id, verdict = chain_end(run_dir)
    assert f"synth candidate #{best_id} on single_ar: {verdict}" in source.split('"""')[1]
    md = (best / "lineage.md").read_text()
    assert "benchmark verdict" not in md and "verdict at 50 steps" in md
    assert "nan" not in md.lower().split("## program")[0]

    (best / "lineage.md").write_text("my notes")
    err = one_line_error(synth_cli("export", str(run_dir), "--out", str(best)))
    assert "--force" in err and (best / "lineage.md").read_text() == "my notes"
    forced = synth_cli("export", str(run_dir), "--out", str(best), "--force", "--no-verify", "--transfer", "none")
    assert forced.returncode == 0 and (best / "lineage.md").read_text() != "my notes"


def chain_end(run_dir: Path) -> tuple[int, str]:
    chain = json.loads(synth_cli("lineage", str(run_dir), "--json").stdout)
    return chain[-1]["id"], chain[-1]["verdict"]
