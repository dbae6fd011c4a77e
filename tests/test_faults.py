"""Faults the run must survive: a disk that fills up mid-write."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from population.db import RunDB
from tests.conftest import ROOT

FILL_UP = textwrap.dedent('''
    import resource, sys, time
    from pathlib import Path
    from population.db import RunDB
    from population.records import Candidate

    run = Path(sys.argv[1])
    db = RunDB.open(run)
    size = sum(f.stat().st_size for f in run.iterdir())
    limit = size + 256 * 1024  # the "disk" fills 256 KiB later
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    import signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    written = 0
    try:
        for generation in range(1, 10_000):
            batch = [Candidate(generation=generation, genome="g", source="x" * 4000, operator="seed", status="scored",
                               fitness=float(i)) for i in range(8)]
            db.checkpoint(batch, {"generation": generation})
            written = generation
    except Exception as exc:
        print(f"{written} {type(exc).__name__}: {exc}")
''')


def test_full_disk_leaves_the_database_consistent(tmp_path):
    run = tmp_path / "run"
    RunDB.create(run, {"track": "single_ar"}).close()
    proc = subprocess.run([sys.executable, "-c", FILL_UP, str(run)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    written, _, error = proc.stdout.strip().partition(" ")
    assert "disk" in error.lower() and int(written) > 0, proc.stdout + proc.stderr  # SQLite: "disk I/O error"
    with RunDB.open(run) as db:  # opens cleanly: quick_check passed
        assert db._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        state = db.get_state("engine")
        generations = {c.generation for c in db.candidates()}
        assert state["generation"] == int(written) == max(generations)  # the failed batch left nothing behind
        assert all(len(db.candidates(generation=g)) == 8 for g in generations)
        assert json.loads(json.dumps(db.config())) == {"track": "single_ar"}
