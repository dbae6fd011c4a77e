"""The run database: one SQLite file, `<run_dir>/synth.db`, holding everything a run knows.

Schema (`PRAGMA user_version`, `PRAGMA application_id` = APPLICATION_ID; the CREATE statements and the
migrations that upgrade an older run are in population/schema.py):

    run          (id = 1, config JSON, created_at)           the run config, written once at creation
    candidates   (id INTEGER PRIMARY KEY, generation, kind, genome, source, parents JSON [ids],
                  operator, operator_params JSON, model, fingerprint, status, duplicate_of -> candidates,
                  fitness, created_at, timings JSON)        indexed for dedup, status and a proposal's reads
    evaluations  (id, candidate_id -> candidates, track, seed_set, steps, outcome, fitness, result JSON,
                  created_at, UNIQUE (candidate_id, track, seed_set, steps))
    llm_calls    (id, provider, model, operator, parent_ids JSON, prompt, reply, tokens_in, tokens_out,
                  cost_usd, latency_s, outcome, child_id, error, created_at)
    state        (key PRIMARY KEY, value JSON)               e.g. "engine": children made so far + RNG state

What a proposal reads (the alive window, the best few, a root's tune trials) are SQL queries in
population/window.py whose cost does not grow with the run.

Crash safety: WAL journal; every write that touches more than one row is one `BEGIN IMMEDIATE`
transaction, so a SIGKILL at any moment leaves either all of it or none of it. `synchronous=FULL`
(not NORMAL): NORMAL already survives a killed process, FULL also survives a power cut, and it costs
one fsync per commit -- nothing next to the seconds-long training run behind each commit.
The UNIQUE evaluation key is what makes resume safe: an evaluation cannot be recorded twice.
A new file is built under a temporary name and linked into place, so `synth.db` is never half-made.

Concurrency: WAL lets readers (`synth show`) run while a writer (`synth evolve`) commits;
writers wait up to 30 s for one another (`timeout=30`, `BEGIN IMMEDIATE` so the wait is honoured).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from population import schema, window
from population.dbfile import APPLICATION_ID, RunDirError, _one_line, check_file as _check_file, fsync as _fsync
from population.lineage import LineageQueries
from population.llm_calls import LLMCallLog
from population.records import Candidate, Evaluation
from population.schema import SCHEMA_VERSION, encode_column, decode_row

DB_NAME = "synth.db"

_CANDIDATE_COLUMNS = ("generation", "kind", "genome", "source", "parents", "operator", "operator_params", "model",
                      "fingerprint", "status", "duplicate_of", "fitness", "created_at", "timings",
                      "cascade")


class DuplicateEvaluationError(ValueError):
    """The (candidate, track, seed set, steps) evaluation is already recorded."""


class RunDB(LLMCallLog, LineageQueries):
    """The run database of one run directory. Use `create`, `open` or `open_or_create`, not the constructor."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = sqlite3.connect(path, timeout=30, isolation_level=None)  # autocommit; we BEGIN ourselves
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._config: Optional[dict] = None

    # ------------------------------------------------------------------ opening
    @classmethod
    def create(cls, run_dir: Path | str, config: dict) -> "RunDB":
        """Makes the directory and a fresh database; refuses if a run already lives there."""
        run_dir = Path(run_dir)
        path = run_dir / DB_NAME
        if run_dir.exists() and not run_dir.is_dir():
            raise RunDirError(f"{run_dir}: exists and is not a directory")
        if path.exists():
            raise RunDirError(f"{path}: a run already exists here; resume it or choose another run directory")
        config_json = json.dumps(config)  # fails before anything is written if config is not JSON
        run_dir.mkdir(parents=True, exist_ok=True)
        tmp = run_dir / f".{DB_NAME}.{os.getpid()}.tmp"
        tmp.unlink(missing_ok=True)
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            with conn:
                conn.execute("BEGIN")
                schema.build(conn)
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute("INSERT INTO run (id, config, created_at) VALUES (1, ?, ?)", (config_json, time.time()))
        finally:
            conn.close()
        try:
            _fsync(tmp)
            os.link(tmp, path)  # atomic and exclusive: a concurrent creator cannot be overwritten
        except FileExistsError:
            raise RunDirError(f"{path}: a run already exists here; resume it or choose another run directory") from None
        finally:
            tmp.unlink(missing_ok=True)
        _fsync(run_dir)
        return cls.open(run_dir)

    @classmethod
    def open(cls, run_dir: Path | str) -> "RunDB":
        """Opens an existing run; RunDirError (never a change to the file) if it is not a usable synth database."""
        run_dir = Path(run_dir)
        path = run_dir / DB_NAME
        if run_dir.exists() and not run_dir.is_dir():
            raise RunDirError(f"{run_dir} is a file, not a run directory")
        if not run_dir.is_dir():
            raise RunDirError(f"{run_dir}: no such run directory")
        if not path.is_file():
            raise RunDirError(f"{run_dir}: not a synth run directory (no {DB_NAME})")
        _check_file(path)
        db = cls(path)
        try:
            db._migrate()
        except BaseException:
            db.close()
            raise
        return db

    @classmethod
    def open_or_create(cls, run_dir: Path | str, config: dict) -> tuple["RunDB", bool]:
        """(db, resumed): opens the run if `synth.db` exists, else creates it with `config`."""
        if (Path(run_dir) / DB_NAME).exists():
            return cls.open(run_dir), True
        return cls.create(run_dir, config), False

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "RunDB":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _migrate(self) -> None:
        """Brings an older run up to SCHEMA_VERSION (population/schema.py), after a backup copy."""
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version >= SCHEMA_VERSION:
            return
        backup = self.path.with_name(f"{DB_NAME}.bak-v{version}")
        try:
            if not backup.exists():  # made under another name first: a half-written copy never counts
                partial = backup.with_name(f".{backup.name}.{os.getpid()}.tmp")
                target = sqlite3.connect(partial)
                try:
                    self._conn.backup(target)
                finally:
                    target.close()
                os.replace(partial, backup)
            with self._write() as conn:
                found = conn.execute("PRAGMA user_version").fetchone()[0]  # another process may have done it
                if found < SCHEMA_VERSION:
                    schema.upgrade(conn, found)
        except (OSError, sqlite3.Error) as err:  # a read-only run directory, a full disk
            raise RunDirError(f"{self.path}: could not upgrade schema {version} to {SCHEMA_VERSION} "
                              f"({_one_line(err)}); the file is unchanged") from None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction: all of it commits or none of it does (rolled back on any exception)."""
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")  # take the write lock now, so the busy timeout applies
            yield self._conn

    # ------------------------------------------------------------------ run config and state
    def config(self) -> dict:
        if self._config is None:
            self._config = json.loads(self._conn.execute("SELECT config FROM run WHERE id = 1").fetchone()[0])
        return dict(self._config)

    def set_state(self, key: str, value: dict) -> None:
        with self._write() as conn:
            self._set_state(conn, key, value)

    def get_state(self, key: str) -> Optional[dict]:
        row = self._conn.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    @staticmethod
    def _set_state(conn: sqlite3.Connection, key: str, value: dict) -> None:
        conn.execute("INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                     (key, json.dumps(value)))

    # ------------------------------------------------------------------ candidates
    def add_candidates(self, cands: list[Candidate]) -> list[int]:
        """Inserts all or none; sets `.id` on each candidate after the commit and returns the ids."""
        with self._write() as conn:
            ids = self._insert_candidates(conn, cands)
        for cand, cid in zip(cands, ids):
            cand.id = cid
        return ids

    def checkpoint(self, new_candidates: list[Candidate], state: dict, key: str = "engine",
                          calls: list[tuple[int, Optional[Candidate], str, Optional[str]]] = ()) -> list[int]:
        """The engine's checkpoint: new candidates and the state that made them (RNG, counter) together,
        and the LLM calls that made them: each (call id, its candidate among `new_candidates` or None,
        its final outcome, its error line) is settled in the same transaction, so a call never names a
        lost child."""
        with self._write() as conn:
            ids = self._insert_candidates(conn, new_candidates)
            self._set_state(conn, key, state)
            for call_id, cand, outcome, error in calls:
                child = next((cid for c, cid in zip(new_candidates, ids) if c is cand), None)
                conn.execute("UPDATE llm_calls SET outcome = ?, child_id = ?, error = ? WHERE id = ?",
                             (outcome, child, error, call_id))
        for cand, cid in zip(new_candidates, ids):
            cand.id = cid
        return ids

    @staticmethod
    def _insert_candidates(conn: sqlite3.Connection, cands: list[Candidate]) -> list[int]:
        ids = []
        sql = f"INSERT INTO candidates ({', '.join(_CANDIDATE_COLUMNS)}) VALUES ({', '.join('?' * len(_CANDIDATE_COLUMNS))})"
        for cand in cands:
            if cand.id is not None:
                raise ValueError(f"candidate already has id {cand.id}; the database assigns ids")
            cid = conn.execute(sql, [encode_column(c, getattr(cand, c)) for c in _CANDIDATE_COLUMNS]).lastrowid
            for parent in cand.parents:  # parents are a JSON list, so check here what a foreign key would
                if parent >= cid or conn.execute("SELECT 1 FROM candidates WHERE id = ?", (parent,)).fetchone() is None:
                    raise ValueError(f"candidate parent {parent} does not exist")
            ids.append(cid)
        return ids

    def update_candidate(self, id: int, **fields) -> Candidate:
        """Changes the named fields (validated as a Candidate) and returns the updated candidate."""
        if "id" in fields:
            raise ValueError("a candidate's id cannot change")
        with self._write() as conn:
            row = conn.execute("SELECT * FROM candidates WHERE id = ?", (id,)).fetchone()
            if row is None:
                raise KeyError(f"no candidate {id}")
            cand = Candidate.model_validate({**decode_row(row), **fields})
            if fields:
                conn.execute(f"UPDATE candidates SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?",
                             [*(encode_column(k, getattr(cand, k)) for k in fields), id])
        return cand

    def get_candidate(self, id: int) -> Optional[Candidate]:
        row = self._conn.execute("SELECT * FROM candidates WHERE id = ?", (id,)).fetchone()
        return Candidate.model_validate(decode_row(row)) if row else None

    def candidates(self, status: Optional[str] = None, generation: Optional[int] = None) -> list[Candidate]:
        where, args = [], []
        if status is not None:
            where.append("status = ?")
            args.append(status)
        if generation is not None:
            where.append("generation = ?")
            args.append(generation)
        return self._select_candidates(" AND ".join(where) or "1", args, "id")

    def pending(self) -> list[Candidate]:
        return self.candidates(status="pending")

    def count_evaluations(self) -> int:
        return self._conn.execute("SELECT count(*) FROM evaluations").fetchone()[0]

    def count(self, status: Optional[str] = None) -> int:
        if status is None:
            return self._conn.execute("SELECT count(*) FROM candidates").fetchone()[0]
        return self._conn.execute("SELECT count(*) FROM candidates WHERE status = ?", (status,)).fetchone()[0]

    def find_by_fingerprint(self, fp: str, status: Optional[str] = "scored") -> Optional[Candidate]:
        """The earliest candidate with this status (scored, by default; None: any) that computes the
        same thing, or None."""
        where, args = ("fingerprint = ?", [fp]) if status is None else ("fingerprint = ? AND status = ?", [fp, status])
        found = self._select_candidates(where, args, "id LIMIT 1")
        return found[0] if found else None

    def find_by_text(self, genome: Optional[str], source: str) -> Optional[Candidate]:
        """The earliest candidate with this program text (or, for code, this Submission file)."""
        if genome is not None:
            found = self._select_candidates("genome = ?", [genome], "id LIMIT 1")
            if found:
                return found[0]
        found = self._select_candidates("source = ?", [source], "id LIMIT 1")
        return found[0] if found else None

    def oldest_pending(self) -> Optional[Candidate]:
        found = self._select_candidates("status = 'pending'", [], "id LIMIT 1")
        return found[0] if found else None

    def top(self, k: int, track: Optional[str] = None) -> list[Candidate]:
        """The k best by fitness (None last, ties to the lower id); with `track`, only candidates
        evaluated on that track (a duplicate counts through its twin)."""
        where, args = "1", []
        if track is not None:
            where = ("EXISTS (SELECT 1 FROM evaluations e WHERE e.candidate_id = COALESCE(candidates.duplicate_of, "
                     "candidates.id) AND e.track = ?)")
            args = [track]
        return self._select_candidates(where, args, "fitness DESC, id LIMIT ?", [k])  # NULL sorts lowest: last

    # ------------------------------------------------------------------ what a proposal reads (population/window.py)
    def alive(self, horizon: int, population: int, elites: int) -> list[Candidate]:
        """selection.alive over the engine's window (every seed, and the candidates below `horizon`)."""
        return self._by_ids(window.alive_ids(self._conn, horizon, population, elites))

    def seeds_to_tune(self) -> list[Candidate]:
        """The alive seeds with program text: scored ones, then duplicates, each by id."""
        return self._by_ids(window.seed_ids_to_tune(self._conn), keep_order=True)

    def ranked_programs(self, horizon: int, limit: int) -> list[Candidate]:
        """The window's `limit` best alive candidates with program text, by selection.rank_key."""
        return self._by_ids(window.ranked_program_ids(self._conn, horizon, limit), keep_order=True)

    def tune_trials(self, root: int) -> list[Candidate]:
        """Every `tune` child of the structure rooted at candidate `root`, by id."""
        return self._by_ids(window.tune_trial_ids(self._conn, root))

    def latest(self, status: str, n: int) -> list[Candidate]:
        """The `n` newest candidates with this status, in id order (`candidates(status)[-n:]`)."""
        return self._by_ids(window.latest_ids(self._conn, status, n))

    def children_of(self, parents: list[int], n: int) -> list[Candidate]:
        """The `n` newest candidates whose first parent is in `parents`, in id order."""
        return self._by_ids(window.children_ids(self._conn, list(parents), n)) if parents and n > 0 else []

    def _by_ids(self, ids: list[int], keep_order: bool = False) -> list[Candidate]:
        """The candidates with these ids: in id order, or in the order given."""
        if not ids:
            return []
        found = {c.id: c for c in self._select_candidates(f"id IN ({', '.join('?' * len(ids))})", ids, "id")}
        return [found[i] for i in ids] if keep_order else sorted(found.values(), key=lambda c: c.id)

    def _select_candidates(self, where: str, args: list, order: str, tail: list = ()) -> list[Candidate]:
        rows = self._conn.execute(f"SELECT * FROM candidates WHERE {where} ORDER BY {order}", [*args, *tail])
        return [Candidate.model_validate(decode_row(r)) for r in rows]

    # ------------------------------------------------------------------ evaluations
    def add_evaluation(self, ev: Evaluation, candidate_status: str, candidate_fitness: Optional[float]) -> None:
        """Records the evaluation and the candidate's new status/fitness in one transaction."""
        key = (ev.candidate_id, ev.track, ev.seed_set, ev.budget)
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM evaluations WHERE candidate_id = ? AND track = ? AND seed_set = ? "
                            "AND steps = ?", key).fetchone():
                raise DuplicateEvaluationError(
                    f"candidate {ev.candidate_id} already has an evaluation on track {ev.track!r}, "
                    f"seed set {ev.seed_set!r}, {ev.budget} steps")
            if conn.execute("SELECT 1 FROM candidates WHERE id = ?", (ev.candidate_id,)).fetchone() is None:
                raise KeyError(f"no candidate {ev.candidate_id}")
            conn.execute("INSERT INTO evaluations (candidate_id, track, seed_set, steps, outcome, fitness, result, "
                         "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (*key, ev.outcome, ev.fitness, json.dumps(ev.result), ev.created_at))
            conn.execute("UPDATE candidates SET status = ?, fitness = ? WHERE id = ?",
                         (candidate_status, candidate_fitness, ev.candidate_id))

    def evaluations(self, candidate_id: Optional[int] = None, track: Optional[str] = None,
                    seed_set: Optional[str] = None) -> list[Evaluation]:
        """In the order they were recorded."""
        where, args = [], []
        for name, value in (("candidate_id", candidate_id), ("track", track), ("seed_set", seed_set)):
            if value is not None:
                where.append(f"{name} = ?")
                args.append(value)
        rows = self._conn.execute(f"SELECT candidate_id, track, seed_set, steps, outcome, fitness, result, created_at "
                                  f"FROM evaluations WHERE {' AND '.join(where) or '1'} ORDER BY id", args)
        return [Evaluation.model_validate(decode_row(r)) for r in rows]
