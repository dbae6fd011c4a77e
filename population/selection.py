"""Regularized (aging) evolution with tournament selection and elitism (Real et al. 2019).

Aging retires the oldest member, not the worst: a lucky score cannot squat in the population
forever, which keeps the search exploring. Elitism then keeps the best few of all time alive,
so the run never forgets its winners. Pure functions over candidate lists (no database);
deterministic given `rng`, and independent of the order the candidates are passed in.
"""

from __future__ import annotations

import math
import random

from population.records import Candidate

ALIVE_STATUSES = ("scored", "duplicate")  # a duplicate is a re-evaluation of its twin: it ages like one


def rank_key(c: Candidate) -> tuple:
    """Sort key, fittest first; no fitness (or NaN) ranks last; ties go to the older candidate (lower id)."""
    fit = c.fitness if c.fitness is not None and not math.isnan(c.fitness) else -math.inf
    return (-fit, c.id)


def alive(candidates: list[Candidate], population_size: int, elites: int) -> list[Candidate]:
    """The `population_size` most recent scored/duplicate candidates with a fitness, plus the all-time
    top `elites` of those that have aged out; ordered by id."""
    eligible = sorted((c for c in candidates if c.status in ALIVE_STATUSES and c.fitness is not None),
                      key=lambda c: c.id)
    young = eligible[-population_size:] if population_size > 0 else []
    young_ids = {c.id for c in young}
    elite = [c for c in sorted(eligible, key=rank_key)[:max(elites, 0)] if c.id not in young_ids]
    return sorted(young + elite, key=lambda c: c.id)


def tournament(population: list[Candidate], k: int, rng: random.Random) -> Candidate:
    """Samples k distinct members (all of them if fewer) and returns the fittest (ties: lower id)."""
    if not population:
        raise ValueError("tournament on an empty population")
    contenders = rng.sample(population, min(max(k, 1), len(population)))
    return min(contenders, key=rank_key)


def select_parents(population: list[Candidate], n: int, k: int, rng: random.Random) -> list[Candidate]:
    """n tournament winners, distinct while the population allows it (crossing a program with
    itself wastes an evaluation)."""
    parents: list[Candidate] = []
    for _ in range(n):
        chosen = {p.id for p in parents}
        pool = [c for c in population if c.id not in chosen] or population
        parents.append(tournament(pool, k, rng))
    return parents
