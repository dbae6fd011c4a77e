"""What a candidate's process may not do, enforced by the OS and by the interpreter.

The static policy (evaluator/policy.py) rejects most hostile files before they run; this is the
second layer, for what slips past it. Applied in the forked child, after fork and before the
candidate's code is executed: limits, a private scratch directory, closed stdio, and an audit
hook that cannot be removed once installed.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000

OUTPUT_LIMIT_BYTES = 4 * 2**20  # what a candidate may print: enough for a traceback, not a flood

# Audit events (https://docs.python.org/3/library/audit_events.html) a step never needs.
BLOCKED_EVENTS = (
    "socket.", "subprocess.", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
    "os.forkpty", "os.kill", "os.killpg", "os.putenv", "os.unsetenv", "os.remove", "os.rename",
    "os.rmdir", "os.symlink", "os.link", "os.truncate", "os.chmod", "os.chown", "shutil.",
    "ctypes.", "sys._current_frames", "sys.settrace", "sys.setprofile",
    "gc.get_objects", "gc.get_referrers", "gc.get_referents", "urllib.", "http.client.",
    "ftplib.", "smtplib.", "webbrowser.", "pty.", "sys.remote_exec",
)


PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Linux: get SIGKILL when the parent dies, so no worker or candidate outlives whoever ran it."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux: the engine's timeouts still bound every candidate


class SandboxViolation(PermissionError):
    """Raised inside the candidate when it reaches for something a step never needs."""


violations: list[str] = []


def isolate_network() -> str:
    """Moves this process into an empty network namespace (no interfaces, not even loopback up).

    Called once, in the worker, before any thread exists (user namespaces need a single thread).
    Returns how the network is cut off, for the record.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    for flags, how in ((CLONE_NEWNET, "netns"), (CLONE_NEWUSER | CLONE_NEWNET, "userns+netns")):
        if libc.unshare(flags) == 0:
            return how
    return "audit-hook"  # no namespaces here: sockets are still refused by the audit hook below


CANDIDATE_FILENAME = "submission.py"  # what the worker compiles the candidate's source as


def _audit(scratch: str):
    scratch = os.path.realpath(scratch)
    inside = [False]

    def candidate_calls() -> bool:
        """Torch's own code takes frames (manual_seed formats a stack); only the candidate may not."""
        inside[0] = True
        try:
            return sys._getframe(2).f_code.co_filename == CANDIDATE_FILENAME
        finally:
            inside[0] = False

    def hook(event: str, args: tuple) -> None:
        if inside[0]:
            return
        if event == "open":
            _check_open(args, scratch)
            return
        if event == "sys._getframe" and not candidate_calls():
            return
        if event == "sys._getframe" or event.startswith(BLOCKED_EVENTS):
            message = f"sandbox blocked {event}"
            violations.append(message)
            raise SandboxViolation(message)

    return hook


def _check_open(args: tuple, scratch: str) -> None:
    path, mode, flags = (tuple(args) + (None, None, None))[:3]
    if not isinstance(path, (str, bytes)):
        return  # an already-open file descriptor
    path = os.fsdecode(path)
    real = os.path.realpath(path)
    writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
        isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC))
    parts = real.split("/")
    other_process = len(parts) > 2 and parts[1] == "proc" and parts[2].isdigit() and int(parts[2]) != os.getpid()
    if other_process or (writing and not (real == scratch or real.startswith(scratch + os.sep))):
        message = f"sandbox blocked open({path!r}, {'write' if writing else 'read'})"
        violations.append(message)
        raise SandboxViolation(message)


def confine_child(scratch: str, memory_mb: int | None) -> None:
    """Limits for one candidate: its own process group, memory and output caps, no stdio, the hook."""
    os.setpgid(0, 0)  # the worker kills the whole group on timeout
    die_with_parent()
    os.chdir(scratch)
    if memory_mb:
        current = _virtual_memory_bytes()
        cap = current + memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (OUTPUT_LIMIT_BYTES, OUTPUT_LIMIT_BYTES))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an over-long write fails instead of killing us silently
    log = os.open(os.path.join(scratch, "output.log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.close(devnull)
    sys.stdout = open(1, "w", closefd=False, buffering=1)
    sys.stderr = open(2, "w", closefd=False, buffering=1)
    sys.addaudithook(_audit(scratch))


def _virtual_memory_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


# What the harness relies on and a step must leave alone. Compared by identity before and after a run.
def _watched() -> dict[str, object]:
    import torch
    import torch.nn.functional as F
    from torch import nn

    from evaluator import tracks

    watched = {
        "torch.nn.functional.mse_loss": F.mse_loss, "torch.nn.functional.cross_entropy": F.cross_entropy,
        "torch.softmax": torch.softmax, "torch.nn.Module.__call__": nn.Module.__call__,
        "torch.Tensor.backward": torch.Tensor.backward, "torch.Tensor.argmax": torch.Tensor.argmax,
        "torch.Tensor.item": torch.Tensor.item, "torch.optim.Optimizer.zero_grad": torch.optim.Optimizer.zero_grad,
        "torch.nn.MultiheadAttention.forward": nn.MultiheadAttention.forward,
        "torch.nn.Embedding.forward": nn.Embedding.forward, "torch.nn.Linear.forward": nn.Linear.forward,
    }
    for name in ("AttentionRegressor", "AssociativeRecall"):
        cls = getattr(tracks, name)
        watched[f"{name}.forward"] = cls.forward
        watched[f"{name} attributes"] = tuple(sorted(vars(cls)))
    return watched


def integrity_snapshot() -> dict[str, object]:
    return _watched()


def integrity_changes(before: dict[str, object]) -> list[str]:
    """Names of what the run changed: patched harness functions, new attributes on the model classes."""
    after = integrity_snapshot()
    return [name for name, value in before.items() if not (value is after[name] or value == after[name])]
