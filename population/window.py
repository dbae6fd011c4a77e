"""What one proposal reads, as SQL whose cost stays flat as the run grows (issue 15).

Each function returns candidate ids, walking one of schema.py's indexes and stopping at its LIMIT;
`RunDB` loads the rows (sources and all) for those few ids only. The results are exactly those of
the pure-Python definitions over every candidate (population.selection.alive, rank_key and the
engine's window: seeds plus everything below the horizon); tests/test_window.py holds them to it,
because a seeded run's children depend on the order as much as on the members.
"""

from __future__ import annotations

import sqlite3

from population.schema import ALIVE

_VISIBLE = "(generation = 0 OR id < ?)"  # the engine's window: every seed, and what is below the horizon


def _ids(conn: sqlite3.Connection, sql: str, args: tuple) -> list[int]:
    return [row[0] for row in conn.execute(sql, args)]


def alive_ids(conn: sqlite3.Connection, horizon: int, population: int, elites: int) -> list[int]:
    """selection.alive over the window: the `population` youngest alive candidates with a fitness, plus
    the all-time best `elites` of the window that aged out; in id order."""
    young: list[int] = []
    if population > 0:
        young = _ids(conn, f"SELECT id FROM candidates INDEXED BY candidates_alive WHERE {ALIVE} AND id < ? "
                           "ORDER BY id DESC LIMIT ?", (horizon, population))
        young += _ids(conn, f"SELECT id FROM candidates INDEXED BY candidates_seeds "
                           f"WHERE generation = 0 AND id >= ? AND {ALIVE}", (horizon,))
        young = sorted(young)[-population:]
    kept = set(young)
    elite = _ids(conn, f"SELECT id FROM candidates INDEXED BY candidates_fitness WHERE {ALIVE} AND {_VISIBLE} "
                       "ORDER BY fitness DESC, id LIMIT ?", (horizon, max(elites, 0)))
    return sorted(young + [i for i in elite if i not in kept])


def seed_ids_to_tune(conn: sqlite3.Connection) -> list[int]:
    """Seeds with program text that are alive (scored or duplicate, with or without a fitness), in the
    order the engine's window lists them: scored ones first, then duplicates, each by id."""
    return _ids(conn, "SELECT id FROM candidates INDEXED BY candidates_seeds WHERE generation = 0 "
                      "AND status IN ('scored', 'duplicate') AND genome != '' ORDER BY status != 'scored', id", ())


def ranked_program_ids(conn: sqlite3.Connection, horizon: int, limit: int) -> list[int]:
    """The window's `limit` best candidates with program text, by selection.rank_key (no fitness last)."""
    return _ids(conn, "SELECT id FROM candidates INDEXED BY candidates_fitness WHERE status IN ('scored', 'duplicate') "
                      f"AND {_VISIBLE} AND genome != '' ORDER BY fitness DESC, id LIMIT ?", (horizon, limit))


def tune_trial_ids(conn: sqlite3.Connection, root: int) -> list[int]:
    """Every `tune` child of `root`'s structure, by id."""
    return _ids(conn, "SELECT id FROM candidates INDEXED BY candidates_tune_root WHERE operator = 'tune' "
                      "AND json_extract(operator_params, '$.root') = ? ORDER BY id", (root,))


def latest_ids(conn: sqlite3.Connection, status: str, n: int) -> list[int]:
    """The `n` newest candidates with this status, oldest of them first."""
    return _ids(conn, "SELECT id FROM candidates INDEXED BY candidates_status WHERE status = ? "
                      "ORDER BY id DESC LIMIT ?", (status, n))[::-1]


def children_ids(conn: sqlite3.Connection, parents: list[int], n: int) -> list[int]:
    """The `n` newest candidates whose first parent is one of `parents`, oldest of them first."""
    marks = ", ".join("?" * len(parents))
    return _ids(conn, "SELECT id FROM candidates INDEXED BY candidates_first_parent "
                      f"WHERE json_extract(parents, '$[0]') IN ({marks}) ORDER BY id DESC LIMIT ?", (*parents, n))[::-1]
