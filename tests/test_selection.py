"""Aging evolution: who is alive, tournament winners, determinism, elitism."""

from __future__ import annotations

import random

import pytest

from population.records import Candidate
from population.selection import alive, select_parents, tournament


def member(cid: int, fitness: float | None, status: str = "scored") -> Candidate:
    return Candidate(id=cid, generation=0, source="", operator="seed", status=status, fitness=fitness)


def ids(cands: list[Candidate]) -> list[int]:
    return [c.id for c in cands]


# fitness by id: the best of all time (2) and the runner-up (5) are old
HISTORY = [member(i, f) for i, f in enumerate([0.1, 0.9, 0.2, 0.3, 0.8, 0.2, 0.4, 0.5, 0.3, 0.1], start=1)]


def test_alive_is_the_most_recent_window():
    assert ids(alive(HISTORY, 4, elites=0)) == [7, 8, 9, 10]


def test_elites_come_back_after_aging_out():
    assert ids(alive(HISTORY, 4, elites=1)) == [2, 7, 8, 9, 10]
    assert ids(alive(HISTORY, 4, elites=2)) == [2, 5, 7, 8, 9, 10]
    assert ids(alive(HISTORY, 8, elites=2)) == [2, 3, 4, 5, 6, 7, 8, 9, 10]  # 5 is still young: no double


def test_alive_counts_only_scored_and_duplicates_with_a_fitness():
    extra = [member(11, None, "failed"), member(12, 0.99, "duplicate"), member(13, None, "pending"),
             member(14, None, "duplicate"), member(15, 5.0, "invalid")]
    assert ids(alive(HISTORY + extra, 3, elites=1)) == [9, 10, 12]  # 12 is the best now, and young
    shuffled = HISTORY + extra
    random.Random(0).shuffle(shuffled)
    assert ids(alive(shuffled, 3, elites=1)) == [9, 10, 12]  # the input order does not matter
    assert ids(alive(shuffled, 3, elites=2)) == [2, 9, 10, 12]


def test_full_tournament_picks_the_fittest_and_ties_go_to_the_older():
    pop = [member(4, 0.5), member(3, 0.9), member(7, 0.9), member(1, None)]
    assert tournament(pop, k=4, rng=random.Random(1)).id == 3
    assert tournament(pop, k=10, rng=random.Random(1)).id == 3  # k larger than the population: everyone


def test_tournament_size_sets_the_selection_pressure():
    pop = alive(HISTORY, 10, elites=0)
    rng = random.Random(5)
    k1 = {tournament(pop, 1, rng).id for _ in range(300)}
    k3 = [tournament(pop, 3, rng).id for _ in range(300)]
    assert k1 == set(range(1, 11))  # k=1 is a uniform draw
    assert 10 not in k3 and 1 not in k3  # the two worst (0.1) never win a 3-way tournament with another
    assert k3.count(2) > k3.count(4)


def test_selection_is_deterministic_given_the_rng():
    pop = alive(HISTORY, 6, elites=2)
    a = [ids(select_parents(pop, 2, 3, rng)) for rng in [random.Random(42)] for _ in range(50)]
    b = [ids(select_parents(pop, 2, 3, rng)) for rng in [random.Random(42)] for _ in range(50)]
    c = [ids(select_parents(pop, 2, 3, rng)) for rng in [random.Random(43)] for _ in range(50)]
    assert a == b and a != c


def test_parents_are_distinct_while_the_population_allows():
    pop = alive(HISTORY, 10, elites=0)
    rng = random.Random(3)
    for _ in range(100):
        first, second = select_parents(pop, 2, 10, rng)
        assert (first.id, second.id) == (2, 5)  # a full tournament: the best, then the best of the rest
    assert ids(select_parents([member(1, 0.5)], 2, 2, rng)) == [1, 1]


def test_empty_population_is_an_error():
    with pytest.raises(ValueError):
        tournament([], 3, random.Random(0))
