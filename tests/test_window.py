"""A proposal's SQL queries against the Python definitions they replace, on a populated run database.

The engine used to load every alive candidate and filter in Python; a seeded run's children depend
on the members AND their order, so the SQL must give exactly the same lists, ties and NULLs included.
"""

from __future__ import annotations

import random

import pytest

from population.db import RunDB
from population.records import Candidate
from population.selection import ALIVE_STATUSES, alive, rank_key

STATUSES = ["scored"] * 5 + ["duplicate"] * 2 + ["failed", "screened", "invalid", "pending"]


def populated(tmp_path, n: int = 400, seed: int = 3) -> RunDB:
    """Seeds (some of them duplicates or failures), then children with tied fitnesses, code-only
    children, tune trials of several roots, in every status."""
    rng = random.Random(seed)
    db = RunDB.create(tmp_path / "run", {"track": "t"})
    cands = []
    for i in range(1, n + 1):
        seed_row = i <= 6
        status = ["scored", "scored", "duplicate", "failed", "scored", "duplicate"][i - 1] if seed_row \
            else rng.choice(STATUSES)
        fitness = None
        if status in ("scored", "duplicate") and not (status == "duplicate" and rng.random() < 0.2):
            fitness = rng.choice([0.5, 0.25, 0.75, 1.0, round(rng.random(), 3)])  # many ties
        operator, params = "seed", {}
        if not seed_row and rng.random() < 0.3:
            operator, params = "tune", {"root": rng.choice([1, 2, 5, 9, 40]), "factors": {}}
        elif not seed_row:
            operator = rng.choice(["crossover", "mutate_node", "llm_edit"])
        genome = None if operator == "llm_edit" else f"g{i}" if seed_row else rng.choice([f"g{i}", f"g{i}", ""])
        cands.append(Candidate(generation=0 if seed_row else 1 + (i - 7) // 16, kind="code" if genome is None
                               else "program", genome=genome, source=f"# candidate {i}\n", operator=operator,
                               parents=[] if seed_row else rng.sample(range(1, min(i, 40)), rng.randrange(1, 3)),
                               operator_params=params, status=status, fitness=fitness))
    db.add_candidates(cands)
    return db


def window(db: RunDB, horizon: int) -> list[Candidate]:
    """The engine's old window, word for word: every alive status in turn, then seeds or below the horizon."""
    return [c for status in ALIVE_STATUSES for c in db.candidates(status=status) if c.generation == 0 or c.id < horizon]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    with populated(tmp_path_factory.mktemp("window")) as db:
        yield db


@pytest.mark.parametrize("population,elites", [(8, 2), (1, 0), (16, 5), (0, 3), (50, 1), (3, 400)])
def test_alive_is_selection_alive_over_the_window(db, population, elites):
    for horizon in [-5, 1, 3, 4, 7, 8, 20, 57, 200, 399, 401, 500]:
        expected = alive(window(db, horizon), population, elites)
        assert db.alive(horizon, population, elites) == expected, (horizon, population, elites)


def test_seeds_to_tune_keep_the_windows_order(db):
    expected = [c for c in window(db, 1) if c.generation == 0 and c.genome]
    assert [c.id for c in expected] == [1, 2, 5, 3, 6]  # scored seeds first, then the duplicates
    assert db.seeds_to_tune() == expected


def test_ranked_programs_follow_rank_key(db):
    for horizon in [1, 30, 200, 401]:
        for limit in [1, 7, 100, 1000]:
            expected = sorted((c for c in window(db, horizon) if c.genome), key=rank_key)[:limit]
            assert db.ranked_programs(horizon, limit) == expected


def test_tune_trials_are_every_child_of_the_root(db):
    everyone = db.candidates()
    for root in [1, 2, 5, 9, 40, 3, 1000]:
        expected = [c for c in everyone if c.operator == "tune" and c.operator_params.get("root") == root]
        assert db.tune_trials(root) == expected
    assert len(db.tune_trials(1)) > 5


def test_top_puts_unscored_last_and_ties_to_the_older(db):
    everyone = db.candidates()
    assert db.top(len(everyone)) == sorted(everyone, key=rank_key)
    assert db.top(3) == sorted(everyone, key=rank_key)[:3]


def test_latest_and_children_of_are_the_tails_of_the_full_lists(db):
    everyone = db.candidates()
    for status in ("invalid", "scored", "pending"):
        for n in (1, 5, 1000):
            assert db.latest(status, n) == [c for c in everyone if c.status == status][-n:]
    for chain in ([1], [1, 2, 5], [7, 30, 31, 32], [999]):
        for n in (1, 6, 1000):
            assert db.children_of(chain, n) == [c for c in everyone if c.parents and c.parents[0] in chain][-n:]
    assert len(db.children_of([1, 2, 5], 1000)) > 6
