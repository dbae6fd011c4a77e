"""What a file must be before the run database will open it: an SQLite file of ours, of a schema we read.

Checked from the file's 100-byte header and a read-only connection, so a foreign or newer file is
refused without ever being written to.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from population.schema import SCHEMA_VERSION

APPLICATION_ID = 0x53594E54  # "SYNT": marks the file as a synth run database
_SQLITE_MAGIC = b"SQLite format 3\x00"


class RunDirError(Exception):
    """A run directory or database that cannot be used; the message is one line meant for the user."""


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def check_file(path: Path) -> None:
    """Refuses anything but a healthy synth database of a schema we read, without ever writing to it.

    Identity and version come straight from the 100-byte file header, so a foreign file is judged
    without SQLite touching it; only then a read-only connection runs `PRAGMA quick_check`.
    """
    with open(path, "rb") as f:
        header = f.read(100)
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise RunDirError(f"{path}: not an SQLite database")
    version = int.from_bytes(header[60:64], "big", signed=True)
    app_id = int.from_bytes(header[68:72], "big", signed=True)
    if app_id != APPLICATION_ID:
        raise RunDirError(f"{path}: an SQLite database of another application (application_id {app_id:#x}), "
                          "not a synth run")
    if version > SCHEMA_VERSION:
        raise RunDirError(f"{path}: written by a newer synth (schema {version}, this synth reads up to "
                          f"{SCHEMA_VERSION}); upgrade synth to open it")
    if version < 1:
        raise RunDirError(f"{path}: unknown synth schema version {version}")
    try:
        conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=30)
        try:
            problems = [r[0] for r in conn.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise RunDirError(f"{path}: database is corrupt ({_one_line(problems[0])})")
            if conn.execute("SELECT count(*) FROM run").fetchone()[0] != 1:
                raise RunDirError(f"{path}: database is corrupt (no run config)")
        finally:
            conn.close()
    except sqlite3.DatabaseError as err:
        raise RunDirError(f"{path}: unreadable or corrupt database ({_one_line(err)})") from None


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
