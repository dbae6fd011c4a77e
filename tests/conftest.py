"""Shared fixtures: warm sandboxes are expensive to start, so tests share them per module."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = Path(__file__).resolve().parent / "hostile"

ADAMW_SUBMISSION = '''import torch


class Submission(torch.optim.AdamW):
    def __init__(self, params):
        super().__init__(params, lr=1e-2, betas=(0.9, 0.99), weight_decay=0)
'''

CRASHES_AT_STEP_2 = '''import torch


class Submission(torch.optim.SGD):
    def __init__(self, params):
        super().__init__(params, lr=0.5)
        self.steps = 0

    def step(self, closure=None):
        self.steps += 1
        if self.steps == 2:
            raise RuntimeError("on purpose")
        super().step()
'''


def synth_cli(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 600):
    """Runs the installed CLI the way a user does, in a fresh process."""
    import subprocess

    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd or ROOT, timeout=timeout)


@pytest.fixture
def adamw_source() -> str:
    return ADAMW_SUBMISSION


@pytest.fixture(scope="module")
def jail():
    """One jail per module, for tests that drive candidate sessions directly (evaluator/remote.py)."""
    from evaluator.jail import Jail

    jail = Jail()
    yield jail
    jail.kill()
