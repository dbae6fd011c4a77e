"""The live view as a person sees it: `synth evolve` in a real terminal (tmux) at 80 and 160 columns,
read off the screen while it runs. And the run-dir lock, with two real processes."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, synth_cli

SMALL = ["--track", "single_ar", "--steps", "50", "--population", "4", "--generations", "1", "--seed", "3",
         "--workers", "2", "--finalists", "1", "--heldout", "1"]
WIDTHS = (80, 160)


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


def watch_screens(tmp_path: Path) -> dict[int, list[str]]:
    """Runs one evolve per terminal width, side by side, and keeps every distinct screen until each ends."""
    sessions = {}
    for width in WIDTHS:
        name = f"synth-live-{os.getpid()}-{width}"
        command = (f"cd {ROOT} && {sys.executable} -m cli evolve {' '.join(SMALL)} --run-dir {tmp_path / str(width)}; "
                   f"echo EXIT=$?; read")
        tmux("new-session", "-d", "-s", name, "-x", str(width), "-y", "40", command)
        sessions[width] = name
    screens: dict[int, list[str]] = {w: [] for w in WIDTHS}
    deadline = time.monotonic() + 480
    try:
        while sessions and time.monotonic() < deadline:
            for width, name in list(sessions.items()):
                screen = tmux("capture-pane", "-p", "-t", name)
                if not screens[width] or screens[width][-1] != screen:
                    screens[width].append(screen)
                if "EXIT=" in screen:
                    tmux("kill-session", "-t", name)
                    del sessions[width]
            time.sleep(0.2)  # poll the screen, as an eye would; the loop ends when the command does
    finally:
        for name in sessions.values():
            subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
    return screens


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_live_view_in_a_terminal_at_80_and_160_columns(tmp_path):
    screens = watch_screens(tmp_path)
    for width, seen in screens.items():
        assert seen and "EXIT=0" in seen[-1], (width, seen[-1] if seen else "")
        everything = "\n".join(seen)
        for phase in ("warming workers", "seeds", "search", "finalists"):  # the phase label starts the bar line
            assert re.search(rf"^{phase}\s+\S*━", everything, re.M), (width, phase)
        # true counts while the ten seeds run on two workers: at most two run, the rest wait in the queue
        counts = [tuple(map(int, m)) for m in re.findall(r"running (\d+) · queued (\d+)", everything)]
        assert any(running == 2 and queued > 0 for running, queued in counts), (width, counts)
        assert all(running <= 2 for running, _ in counts), (width, counts)
        # the bar moves during the seeds, with an ETA, fitting the width
        assert re.search(r"^seeds .* [1-9]/10 seeds .*ETA \d\d:\d\d", everything, re.M), width
        # the best is a verdict, never a raw fitness
        bests = re.findall(r"^best (#\d+.*)$", everything, re.M)
        assert any(re.fullmatch(r"#\d+\s+(fail 0\.\d{4}|pass @ \d+)", b.strip()) for b in bests), (width, bests)
        live = everything.split("summary")[0]
        assert "fitness" not in live, width
        assert all(len(line) <= width for line in everything.splitlines())


# ---------------------------------------------------------------------------- the run-dir lock
def test_second_evolve_on_a_busy_run_dir_exits_2_and_the_first_finishes(tmp_path):
    run_dir = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "cli", "evolve", *SMALL, "--finalists", "0", "--quiet",
                              "--run-dir", str(run_dir)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        lock = run_dir / "synth.lock"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (lock.exists() and f"pid {first.pid}" in lock.read_text()):
            assert first.poll() is None, first.communicate()
            time.sleep(0.05)
        second = synth_cli("evolve", "--run-dir", str(run_dir), "--quiet")
        assert second.returncode == 2 and f"pid {first.pid}" in second.stderr, second.stderr
        assert "Traceback" not in second.stderr and len(second.stderr.strip().splitlines()) == 1
        export = synth_cli("export", str(run_dir), "--out", str(tmp_path / "best"))
        assert export.returncode == 2 and "in use" in export.stderr and not (tmp_path / "best").exists()
        out, err = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, out + err
    with sqlite3.connect(run_dir / "synth.db") as conn:
        statuses = {s for (s,) in conn.execute("SELECT status FROM candidates")}
        assert "pending" not in statuses
        assert conn.execute("SELECT count(*) FROM candidates WHERE generation > 0").fetchone()[0] >= 4
    # the lock dies with its holder: the same command resumes now
    again = synth_cli("evolve", "--run-dir", str(run_dir), "--quiet", "--finalists", "0")
    assert again.returncode == 0, again.stderr
