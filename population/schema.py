"""The run database's schema and how an older one is brought up to date.

A database is built from version 1's tables (`BASE`, never edited again: old runs were made by it)
and then every migration in `MIGRATIONS`, in order; `PRAGMA user_version` is the number applied.
So a new run and a migrated old one have the same schema by construction.

Opening a run whose version is older than `SCHEMA_VERSION` copies it to `synth.db.bak-v<N>` and
applies the missing migrations in one transaction (all or nothing, like every other write). A
version newer than this code knows is refused with a one-line error and the file is left alone.

How to add a migration (e.g. a column), the whole change:

    def _v3_cascade(conn):
        \"\"\"Why the column exists.\"\"\"
        conn.execute("ALTER TABLE candidates ADD COLUMN cascade TEXT")

    MIGRATIONS = (..., _v3_cascade)   # appended, never reordered; SCHEMA_VERSION follows

plus the field on the record in population/records.py (and `CANDIDATE_COLUMNS` in db.py), and a test
that a run made before it still opens. A migration must not read the clock or the RNG: migrating a
run twice (two copies) gives the same file.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Callable

BASE = (
    """CREATE TABLE run (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        config TEXT NOT NULL,
        created_at REAL NOT NULL)""",
    """CREATE TABLE candidates (
        id INTEGER PRIMARY KEY,
        generation INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('program', 'code')),
        genome TEXT,
        source TEXT NOT NULL,
        parents TEXT NOT NULL,
        operator TEXT NOT NULL,
        operator_params TEXT NOT NULL,
        model TEXT,
        fingerprint TEXT,
        status TEXT NOT NULL CHECK (status IN ('pending', 'scored', 'failed', 'duplicate', 'invalid', 'screened')),
        duplicate_of INTEGER REFERENCES candidates(id),
        fitness REAL,
        created_at REAL NOT NULL,
        timings TEXT NOT NULL)""",
    "CREATE INDEX candidates_fingerprint ON candidates(fingerprint)",
    "CREATE INDEX candidates_status ON candidates(status)",
    """CREATE TABLE evaluations (
        id INTEGER PRIMARY KEY,
        candidate_id INTEGER NOT NULL REFERENCES candidates(id),
        track TEXT NOT NULL,
        seed_set TEXT NOT NULL,
        steps INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        fitness REAL,
        result TEXT NOT NULL,
        created_at REAL NOT NULL,
        UNIQUE (candidate_id, track, seed_set, steps))""",
    """CREATE TABLE llm_calls (
        id INTEGER PRIMARY KEY,
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        operator TEXT NOT NULL,
        parent_ids TEXT NOT NULL,
        prompt TEXT NOT NULL,
        reply TEXT NOT NULL,
        tokens_in INTEGER NOT NULL,
        tokens_out INTEGER NOT NULL,
        cost_usd REAL NOT NULL,
        latency_s REAL NOT NULL,
        outcome TEXT NOT NULL,
        child_id INTEGER,
        error TEXT,
        created_at REAL NOT NULL)""",
    "CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)

# The alive set's filter; population/window.py's queries repeat it word for word so that SQLite
# matches them to the partial indexes below.
ALIVE = "status IN ('scored', 'duplicate') AND fitness IS NOT NULL"


def _v2_window_indexes(conn: sqlite3.Connection) -> None:
    """A proposal reads the alive window, the best few, a root's tune trials and (LLM prompts) the children
    of a lineage through these, so its
    cost does not grow with the run (issue 15): each query walks an index and stops at its LIMIT.
    NULL sorts lowest, so `fitness DESC` puts unscored candidates last, as `RunDB.top` wants."""
    conn.execute(f"CREATE INDEX candidates_alive ON candidates(id) WHERE {ALIVE}")
    conn.execute("CREATE INDEX candidates_fitness ON candidates(fitness DESC)")
    conn.execute("CREATE INDEX candidates_seeds ON candidates(id) WHERE generation = 0")
    conn.execute("CREATE INDEX candidates_tune_root ON candidates(json_extract(operator_params, '$.root')) "
                 "WHERE operator = 'tune'")
    conn.execute("CREATE INDEX candidates_first_parent ON candidates(json_extract(parents, '$[0]'))")


def _v3_cascade_column(conn: sqlite3.Connection) -> None:
    """The fidelity gate's plan and outcome get a column of their own (they lived in `timings`, under
    "proxy", next to the probe's seconds)."""
    conn.execute("ALTER TABLE candidates ADD COLUMN cascade TEXT")
    conn.execute("UPDATE candidates SET cascade = json_extract(timings, '$.proxy'), "
                 "timings = json_remove(timings, '$.proxy') WHERE json_extract(timings, '$.proxy') IS NOT NULL")


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_v2_window_indexes, _v3_cascade_column)
SCHEMA_VERSION = 1 + len(MIGRATIONS)


def build(conn: sqlite3.Connection) -> None:
    """A new database at SCHEMA_VERSION, inside the caller's transaction."""
    for statement in BASE:
        conn.execute(statement)
    upgrade(conn, 1)


def upgrade(conn: sqlite3.Connection, version: int) -> None:
    """Applies the migrations after `version`, inside the caller's transaction, and records the new version."""
    for migration in MIGRATIONS[version - 1:]:
        migration(conn)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


# How a record's fields are stored: JSON text for the structured ones.
_JSON_FIELDS = {"parents", "operator_params", "timings", "parent_ids", "result", "cascade"}


def encode_column(name: str, value):
    if name not in _JSON_FIELDS:
        return value
    if hasattr(value, "model_dump"):
        value = value.model_dump()
    return None if value is None else json.dumps(value)


def decode_row(row: sqlite3.Row) -> dict:
    return {k: json.loads(row[k]) if k in _JSON_FIELDS and row[k] is not None else row[k] for k in row.keys()}
