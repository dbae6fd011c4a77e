"""Schema versions: an older run is upgraded in place (after a backup) and goes on; a newer one is refused."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from population import schema
from population.db import APPLICATION_ID, DB_NAME, SCHEMA_VERSION, RunDB, RunDirError
from tests.conftest import synth_cli


def schema_of(path: Path) -> set[tuple]:
    with sqlite3.connect(path) as conn:
        return set(conn.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL"))


def version_of(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA user_version").fetchone()[0]


def make_v1(run_dir: Path) -> Path:
    """A run database as version 1 wrote it: its CREATE statements, its header, a few rows."""
    run_dir.mkdir(parents=True)
    path = run_dir / DB_NAME
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in schema.BASE:
        conn.execute(statement)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO run VALUES (1, ?, 1.0)", (json.dumps({"track": "single_ar"}),))
    for i in range(1, 6):
        conn.execute("INSERT INTO candidates (generation, kind, genome, source, parents, operator, operator_params, "
                     "status, fitness, created_at, timings) VALUES (?, 'program', ?, ?, '[]', ?, ?, ?, ?, 1.0, '{}')",
                     (0 if i < 3 else 1, f"g{i}", f"# {i}\n", "tune" if i > 3 else "seed",
                      json.dumps({"root": 3} if i > 3 else {}), "scored", (6 - i) / 10))  # the oldest is the best
    conn.close()
    return path


def rows(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT * FROM candidates ORDER BY id").fetchall()


def test_an_old_run_is_upgraded_once_after_a_backup(tmp_path):
    path = make_v1(tmp_path / "run")
    before = rows(path)
    with RunDB.open(tmp_path / "run") as db:
        assert [c.id for c in db.alive(horizon=6, population=2, elites=1)] == [1, 4, 5]
        assert [c.id for c in db.tune_trials(3)] == [4, 5]
    assert version_of(path) == SCHEMA_VERSION
    assert [row[:len(before[0])] for row in rows(path)] == before  # new columns come last, the data unchanged
    backup = tmp_path / "run" / f"{DB_NAME}.bak-v1"
    assert version_of(backup) == 1 and rows(backup) == before
    assert {n for _, n, _ in schema_of(path) - schema_of(backup)} >= {"candidates_alive", "candidates_fitness"}
    backup_bytes = backup.read_bytes()
    RunDB.open(tmp_path / "run").close()  # up to date now: nothing to do, the backup is not overwritten
    assert backup.read_bytes() == backup_bytes


def test_the_gate_record_moves_from_timings_into_its_own_column(tmp_path):
    path = make_v1(tmp_path / "run")
    gate = {"steps": 100, "audit": True, "threshold": 0.5, "full_bar": 0.9, "metric": 0.7, "promoted": True}
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE candidates SET timings = ? WHERE id = 4", (json.dumps({"probe_s": 0.25, "proxy": gate}),))
    with RunDB.open(tmp_path / "run") as db:
        moved, untouched = db.get_candidate(4), db.get_candidate(5)
        assert moved.cascade.model_dump() == gate and moved.timings == {"probe_s": 0.25}
        assert untouched.cascade is None and untouched.timings == {}
        db.update_candidate(5, cascade={"steps": 100, "metric": 0.2, "promoted": False})
        assert db.get_candidate(5).cascade.promoted is False


def test_a_migrated_run_has_the_schema_of_a_new_one(tmp_path):
    RunDB.open(make_v1(tmp_path / "old").parent).close()
    RunDB.create(tmp_path / "new", {"track": "single_ar"}).close()
    assert schema_of(tmp_path / "old" / DB_NAME) == schema_of(tmp_path / "new" / DB_NAME)


def test_an_unknown_old_version_is_refused_untouched(tmp_path):
    path = make_v1(tmp_path / "run")
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 0")
    data = path.read_bytes()
    with pytest.raises(RunDirError, match="unknown synth schema version 0"):
        RunDB.open(tmp_path / "run")
    assert path.read_bytes() == data and not list(tmp_path.glob("run/*.bak-*"))


def test_a_newer_run_is_a_one_line_error_with_exit_2(tmp_path):
    RunDB.create(tmp_path / "run", {"track": "single_ar"}).close()
    conn = sqlite3.connect(tmp_path / "run" / DB_NAME)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()  # the last connection checkpoints the WAL, so the version reaches the file's header
    proc = synth_cli("show", str(tmp_path / "run"))
    assert proc.returncode == 2 and "newer synth" in proc.stderr + proc.stdout
    assert len((proc.stderr + proc.stdout).strip().splitlines()) == 1


def downgrade_to_v1(path: Path) -> None:
    """What the same run looks like when version 1 made it: the same tables, without what migrations added."""
    conn = sqlite3.connect(path, isolation_level=None)
    v1 = {name for _, name, _ in version_1_schema()}
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL").fetchall():
        if name not in v1:
            conn.execute(f"DROP INDEX {name}")
    conn.execute("PRAGMA user_version = 1")
    conn.close()


def version_1_schema() -> set[tuple]:
    scratch = sqlite3.connect(":memory:")
    for statement in schema.BASE:
        scratch.execute(statement)
    return set(scratch.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL"))


@pytest.mark.slow  # three `synth evolve` processes: about two minutes on a loaded 2-core machine
def test_a_version_1_run_shows_and_resumes_like_an_uninterrupted_one(tmp_path):
    config = tmp_path / "small.toml"
    config.write_text('seeds = ["adam", "sgd_momentum"]\ntournament = 2\nelites = 1\n')
    args = ["--track", "single_ar", "--steps", "20", "--population", "2", "--seed", "4", "--finalists", "0",
            "--workers", "1", "--quiet", "--config", str(config)]
    old, reference = tmp_path / "old", tmp_path / "reference"
    assert synth_cli("evolve", *args, "--generations", "0", "--run-dir", str(old)).returncode == 0
    downgrade_to_v1(old / DB_NAME)
    assert schema_of(old / DB_NAME) == version_1_schema() and version_of(old / DB_NAME) == 1

    show = synth_cli("show", str(old), "--json")
    assert show.returncode == 0, show.stderr
    assert [c["id"] for c in json.loads(show.stdout)["top"]] and version_of(old / DB_NAME) == SCHEMA_VERSION

    resumed = synth_cli("evolve", *args, "--generations", "1", "--run-dir", str(old))
    assert resumed.returncode == 0, resumed.stderr
    assert synth_cli("evolve", *args, "--generations", "1", "--run-dir", str(reference)).returncode == 0
    columns = "id, generation, operator, genome, parents, status, fitness, fingerprint"
    with sqlite3.connect(old / DB_NAME) as a, sqlite3.connect(reference / DB_NAME) as b:
        made = a.execute(f"SELECT {columns} FROM candidates ORDER BY id").fetchall()
        assert made == b.execute(f"SELECT {columns} FROM candidates ORDER BY id").fetchall()
    assert len(made) >= 4  # two seeds and two children
