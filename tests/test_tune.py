"""The `tune` operator: a seeded TPE study over one structure's constants, deterministic for a fixed seed;
and children that compute what their parent computes are redrawn, not evaluated."""

from __future__ import annotations

import json
import random
import re
import sqlite3
from pathlib import Path

from population.records import Candidate
from primitives.program import Program
from primitives.seeds import SEED_PROGRAMS
from synth.config import SearchConfig
from synth.genetic.tune import OCTAVES, apply_factors, constant_sites, propose
from synth.genetic.variation import live_text
from tests.conftest import synth_cli

NUMBER = re.compile(r"-?\d+(\.\d+)?(e-?\d+)?")


def structure(text: str) -> str:
    return NUMBER.sub("#", text)


def root() -> Candidate:
    return Candidate(id=3, generation=0, genome=SEED_PROGRAMS["adam"], source="", operator="seed",
                     status="scored", fitness=0.40)


def trial(cid: int, factors: dict, fitness: float | None, status: str = "scored") -> Candidate:
    program, _ = apply_factors(Program.from_text(SEED_PROGRAMS["adam"]), factors)
    return Candidate(id=cid, generation=1, genome=program.to_text(), source="", operator="tune", parents=[3],
                     operator_params={"root": 3, "factors": factors}, status=status, fitness=fitness)


def test_a_proposal_is_fixed_by_the_seed_and_the_trials_seen():
    trials = [trial(10, {"c0": 0.0, "c1": 0.0, "c2": 0.0, "c3": 2.0, "c4": 1.0, "c5": 0.0}, 0.7),
              trial(12, {"c0": -1.0, "c1": 1.0, "c2": 0.5, "c3": -3.0, "c4": 0.0, "c5": 2.0}, None, status="failed")]
    first = propose(random.Random(5), root(), trials, regression=False)
    again = propose(random.Random(5), root(), trials, regression=False)
    assert first[0] == again[0] and first[1] == again[1]
    assert propose(random.Random(6), root(), trials, regression=False)[0] != first[0]
    assert propose(random.Random(5), root(), trials[:1], regression=False)[0] != first[0]  # the history matters
    child, params = first
    assert structure(child.to_text()) == structure(SEED_PROGRAMS["adam"])  # only the constants moved
    assert params["root"] == 3 and params["trial"] == 3
    sites = constant_sites(child)
    for (_, _, type_), value in zip(sites, params["factors"].values()):
        assert abs(value) <= OCTAVES.get(type_, 4.0)


def test_evolve_with_tune_is_deterministic_and_wastes_no_child(tmp_path):
    config = tmp_path / "tune.toml"
    config.write_text('seeds = ["adam", "rmsprop", "lion"]\ntune_seeds = 1\n'
                      "operator_weights = {tune = 3.0, mutate_subtree = 1.0, mutate_shrink = 1.0}\n")
    base = ["evolve", "--track", "single_ar", "--steps", "30", "--proxy-steps", "10", "--population", "3", "--tournament", "2",
            "--generations", "4", "--seed", "11", "--workers", "2", "--finalists", "0", "--quiet",
            "--config", str(config)]
    runs = [tmp_path / "a", tmp_path / "b"]
    for run in runs:
        done = synth_cli(*base, "--run-dir", str(run))
        assert done.returncode == 0, done.stderr
    query = "SELECT id, operator, genome, parents, operator_params, status, fitness FROM candidates ORDER BY id"
    rows = [_table(run, query) for run in runs]
    assert rows[0] == rows[1]
    cands = {r[0]: r for r in rows[0]}
    tuned = [r for r in rows[0] if r[1] == "tune"]
    assert tuned, "no tune child was made"
    per_root: dict[int, int] = {}
    for _, _, genome, parents, params, _, _ in tuned:
        params = json.loads(params)
        root_id = params["root"]
        assert json.loads(parents) == [root_id]
        assert structure(genome) == structure(cands[root_id][2])
        per_root[root_id] = per_root.get(root_id, 0) + 1
    assert max(per_root.values()) <= SearchConfig().tune_trials
    assert [json.loads(r[4])["root"] for r in rows[0][3:6]] == [1, 2, 3]  # first, each seed is tuned once
    for cid, _, genome, parents, _, status, _ in rows[0]:
        parents = json.loads(parents)
        if parents and status != "invalid":  # redrawn: no child computes what its first parent does
            assert live_text(Program.from_text(genome)) != live_text(Program.from_text(cands[parents[0]][2])), cid


def _table(run: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(run / "synth.db") as conn:
        return conn.execute(sql).fetchall()
