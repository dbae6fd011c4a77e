"""What may become a run directory, and one writer per run directory: an exclusive `flock` on `<run_dir>/synth.lock`, held for the process's life.

SQLite alone lets two `synth evolve` processes interleave their children in one database (one of them
dies later on a duplicate evaluation). The lock makes the second one stop at once, before it writes,
with a line naming the process that holds it. The kernel drops a `flock` when its holder exits, however
it exits (SIGKILL included), so a stale lock file never blocks a resume.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from population.db import RunDirError

LOCK_NAME = "synth.lock"

FOREIGN_OK = (LOCK_NAME, "synth.db", "synth.db-wal", "synth.db-shm")

_held: dict[Path, int] = {}  # run dir -> open descriptor holding the lock (kept open until exit)


class RunDirBusy(RunDirError):
    """Another process holds the run directory's lock."""


def check_new_run_dir(run_dir: Path | str) -> None:
    """A new run goes into a new or empty directory, never beside someone's files (it would add
    `synth.db` to a folder that holds something else, silently)."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"{run_dir} is a file, not a run directory")
    if run_dir.is_dir():
        others = sorted(p.name for p in run_dir.iterdir()
                        if p.name not in FOREIGN_OK and not p.name.startswith(".synth.db."))
        if others:
            shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
            raise RunDirError(f"{run_dir} is not empty and holds no synth run ({shown}): "
                              "choose a new or empty --run-dir")


def lock_run_dir(run_dir: Path | str, command: str) -> None:
    """Takes the run directory's lock for the rest of this process, or raises RunDirBusy at once."""
    run_dir = Path(run_dir)
    key = run_dir.resolve()
    if key in _held:
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise RunDirBusy(f"{run_dir} is in use by {holder}; wait for it to finish or use another run "
                         "directory") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} (synth {command})\n".encode(), 0)
    _held[key] = fd
