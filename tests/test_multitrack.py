"""Multi-track search (`synth evolve --track single_ar,mqar`): every candidate on every track, cheap first,
the cascade per track, one fitness that a weak track cannot hide behind a strong one."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from synth.search.fitness import ADAMW_REFERENCE, combined, normalised, reference_fitness
from tests.conftest import synth_cli

SEEDS = 'seeds = ["adam", "lion", "rmsprop"]\nelites = 1\n'
MULTI = ["--track", "mqar,single_ar", "--steps", "40", "--proxy-steps", "20", "--population", "4",
         "--tournament", "2", "--seed", "5", "--finalists", "0", "--quiet"]


def rows(run_dir: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(run_dir / "synth.db") as conn:
        return conn.execute(sql).fetchall()


def evolve(run_dir: Path, config: Path, generations: int, *extra: str):
    return synth_cli("evolve", *MULTI, "--config", str(config), "--generations", str(generations),
                     "--run-dir", str(run_dir), *extra)


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("multi_config") / "seeds.toml"
    path.write_text(SEEDS)
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, config) -> Path:
    path = tmp_path_factory.mktemp("multi") / "run"
    proc = evolve(path, config, 1)
    assert proc.returncode == 0, proc.stderr
    return path


# ---------------------------------------------------------------------------- the combined fitness
def test_a_track_at_chance_is_not_hidden_by_a_strong_one():
    lopsided = {"mqar": 1.875, "single_ar": 0.99 * 0.018}  # mqar passes at step 50, single_ar at chance
    balanced = {"mqar": 0.99 * 0.95, "single_ar": 0.99 * 0.80}  # fails both, well above AdamW on both
    assert combined(balanced) > combined(lopsided)
    both_pass = {"mqar": 1.25, "single_ar": 1.25}
    assert combined(both_pass) > combined(balanced)
    # the worst track first; at the same worst track the mean decides
    assert combined({"mqar": 1.875, "single_ar": 1.25}) > combined(both_pass)
    assert combined({"mqar": 1.875, "single_ar": 1.0}) < combined(both_pass)
    assert combined(dict(reversed(list(balanced.items())))) == combined(balanced)


def test_each_track_is_measured_from_the_benchmarks_adamw():
    for track in ADAMW_REFERENCE:
        assert normalised(track, reference_fitness(track)) == pytest.approx(0.0)
    assert normalised("single_ar", 1.0) == pytest.approx(1.0) == normalised("mqar", 1.0)
    assert normalised("random_teacher", reference_fitness("random_teacher") + 0.5) > 0  # a lower MSE than AdamW


# ---------------------------------------------------------------------------- the search
def test_every_scored_candidate_is_scored_on_both_tracks_cheap_first(run_dir):
    cands = rows(run_dir, "SELECT id, status, fitness FROM candidates ORDER BY id")
    evals = rows(run_dir, "SELECT candidate_id, track, seed_set, steps, fitness, id FROM evaluations ORDER BY id")
    scored = [(cid, fit) for cid, status, fit in cands if status == "scored"]
    assert scored
    for cid, fit in scored:
        mine = {track: (f, eid) for c, track, seed_set, steps, f, eid in evals
                if c == cid and seed_set == "benchmark" and steps == 40}
        assert set(mine) == {"single_ar", "mqar"}
        assert mine["single_ar"][1] < mine["mqar"][1]  # the cheap track ran first
        assert fit == pytest.approx(combined({t: f for t, (f, _) in mine.items()}))


def test_a_child_stopped_on_the_first_track_never_runs_the_second(run_dir):
    stopped = [cid for (cid,) in rows(run_dir, "SELECT candidate_id FROM evaluations "
                                               "WHERE track = 'single_ar' AND steps = 20")]
    assert stopped, "no child was stopped at single_ar's gate: the test run is too small to show the cascade"
    for cid in stopped:
        assert rows(run_dir, f"SELECT * FROM evaluations WHERE candidate_id = {cid} AND track = 'mqar'") == []
        (status, cascade), = rows(run_dir, f"SELECT status, cascade FROM candidates WHERE id = {cid}")
        gate = json.loads(cascade)
        assert status == "screened" and gate["promoted"] is False
        assert gate["tracks"]["mqar"]["metric"] is None and gate["tracks"]["mqar"]["steps"] == 20


def test_show_lineage_and_export_give_every_tracks_verdict(run_dir, tmp_path):
    board = json.loads(synth_cli("show", str(run_dir), "--json").stdout)
    assert board["track"] == "single_ar,mqar"
    best = board["top"][0]
    assert list(best["tracks"]) == ["single_ar", "mqar"]
    assert all(best["tracks"][t] in best["verdict"] for t in best["tracks"])
    text = synth_cli("show", str(run_dir)).stdout
    assert "single_ar" in text and "mqar" in text
    proc = synth_cli("export", str(run_dir), "--out", str(tmp_path / "best"), "--transfer", "none")
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "best" / "lineage.json").read_text())
    assert record["tracks"] == ["single_ar", "mqar"] and record["search_verdicts"] == best["tracks"]
    md = (tmp_path / "best" / "lineage.md").read_text()
    assert md.startswith(f"# synth candidate #{best['id']} on single_ar,mqar")
    assert f"single_ar **{best['tracks']['single_ar']}**, mqar **{best['tracks']['mqar']}**" in md
    report = tmp_path / "report.html"
    assert synth_cli("report", str(run_dir), "--out", str(report)).returncode == 0
    html = report.read_text()
    assert f"single_ar {best['tracks']['single_ar']}" in html and f"mqar {best['tracks']['mqar']}" in html


def test_resume_continues_as_an_uninterrupted_run(run_dir, config, tmp_path):
    resumed = tmp_path / "resumed"
    shutil.copytree(run_dir, resumed)
    assert evolve(resumed, config, 2).returncode == 0
    fresh = tmp_path / "fresh"
    assert evolve(fresh, config, 2).returncode == 0
    query = "SELECT id, genome, status, fitness FROM candidates ORDER BY id"
    assert rows(resumed, query) == rows(fresh, query)
    assert len(rows(fresh, query)) > len(rows(run_dir, query))


@pytest.mark.parametrize("tracks", ["single_ar", "single_ar,mqar,random_teacher"])
def test_a_different_track_list_is_refused(run_dir, config, tracks):
    before = rows(run_dir, "SELECT count(*) FROM candidates")
    proc = synth_cli("evolve", "--track", tracks, "--run-dir", str(run_dir), "--quiet")
    assert proc.returncode == 2
    assert "this run was created with tracks=['single_ar', 'mqar']" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert rows(run_dir, "SELECT count(*) FROM candidates") == before


@pytest.mark.parametrize("tracks, said", [("single_ar,nope", "unknown track 'nope'"),
                                          ("mqar,single_ar,mqar", "track 'mqar' is listed twice"),
                                          ("single_ar,", "an empty name in the track list")])
def test_bad_track_lists_are_one_line_errors(tmp_path, tracks, said):
    proc = synth_cli("evolve", "--track", tracks, "--run-dir", str(tmp_path / "run"), "--quiet")
    assert proc.returncode == 2
    assert said in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_the_tuner_scores_a_stopped_trial_by_the_track_that_stopped_it():
    from population.records import Candidate, GateOutcome
    from synth.genetic.tune import trial_value

    tracks = ("single_ar", "mqar")
    later = {"mqar": GateOutcome(steps=100, metric=0.5, promoted=False)}
    stopped_on_mqar = Candidate(generation=1, source="", operator="tune", status="screened",
                                cascade=GateOutcome(steps=100, metric=0.9, promoted=True, tracks=later))
    decent = Candidate(generation=1, source="", operator="tune", status="scored",
                       fitness=combined({"single_ar": 0.99 * 0.8, "mqar": 0.99 * 0.95}))
    assert trial_value(stopped_on_mqar, False, tracks) == combined({"mqar": 0.99 * 0.5})
    assert trial_value(stopped_on_mqar, False, tracks) < trial_value(decent, False, tracks)
    assert trial_value(stopped_on_mqar, False) == pytest.approx(0.99 * 0.9)  # one track: as before
