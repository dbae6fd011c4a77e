"""The engine's handle on one warm worker: send a candidate's source, get a recorded outcome back.

Candidate code never runs in the engine's process, nor in the worker's: the worker (trusted,
evaluator/worker.py) runs the benchmark's loop and steps each candidate's optimizer in a jailed
process of its own (evaluator/jail.py). The worker is started with a minimal, allowlisted
environment, so not even the jail's parent holds the engine's keys. If the worker dies or stops
answering, it is killed and replaced; the candidate gets a `crash` or `timeout` outcome, and the
engine carries on.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from evaluator.jail import MALLOC_TUNABLES
from evaluator.policy import PolicyError, enforce
from evaluator.probe import ProbeResult
from evaluator.record import EvalResult
from evaluator.tracks import get_track

ENV_ALLOWLIST = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "VIRTUAL_ENV", "LD_LIBRARY_PATH",
                 "CUDA_VISIBLE_DEVICES", "CUDA_HOME", "TMPDIR", "SYSTEMROOT")
PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)

DEFAULT_TIMEOUT_S = {"random_teacher": 1200.0, "single_ar": 60.0, "mqar": 60.0}
PROBE_TIMEOUT_S = 10.0
MAX_ANSWER_BYTES = 16 << 20
WORKER_GRACE_S = 120.0  # on top of a candidate's limit: data building, fork, reporting


@dataclass(frozen=True)
class Limits:
    timeout_s: float | None = None  # None: the track's default
    memory_mb: int | None = 4096  # address space a candidate may add on top of the worker's
    # False only for tests that probe the operating system's wall on its own: it switches off both
    # friendly layers, the static policy and the audit hook in the candidate's process
    check_policy: bool = True

    def timeout_for(self, track: str) -> float:
        return self.timeout_s if self.timeout_s is not None else DEFAULT_TIMEOUT_S[track]


def clean_environment(device: str = "cpu", cpu: int | None = None) -> dict[str, str]:
    """What a worker may see of our environment: an allowlist, never the engine's secrets. `cpu` pins
    the worker (and so its jail and every candidate it forks) to that core."""
    env = {k: os.environ[k] for k in ENV_ALLOWLIST if k in os.environ}
    existing = os.environ.get("PYTHONPATH")
    env["PYTHONPATH"] = PACKAGE_ROOT + (os.pathsep + existing if existing else "")
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1", PYTHONHASHSEED="0",
               SYNTH_DEVICE=device, HOME="/nonexistent", GLIBC_TUNABLES=MALLOC_TUNABLES)
    if cpu is not None:
        env["SYNTH_CPU"] = str(cpu)
    return env


class WorkerDied(RuntimeError):
    pass


class Sandbox:
    """One warm worker. Not thread-safe: a pool gives each thread its own Sandbox."""

    def __init__(self, limits: Limits = Limits(), device: str = "cpu", cpu: int | None = None) -> None:
        self.limits = limits
        self.device = device
        self.cpu = cpu  # the core the worker and its candidates share (None: wherever the OS puts them)
        self.proc: subprocess.Popen | None = None
        self.isolation: str | None = None  # what confines candidates on this worker, in words
        self.restarts = 0
        self.interrupted = False

    # ------------------------------------------------------------------ public
    def evaluate(self, source: str, track: str, steps: int | None = None, seed_set: str = "benchmark",
                 submission: str = "", gradient_noise_seed: int | None = None, gate_step: int | None = None,
                 gate_threshold: float | None = None) -> EvalResult:
        spec = get_track(track)
        base = dict(track=track, seed_set=seed_set, submission=submission, max_steps=steps or spec.max_steps,
                    eval_every=spec.eval_every, train_samples=spec.train_samples, eval_samples=spec.eval_samples,
                    batch_size=spec.batch_size, target_mse=spec.target_mse, target_accuracy=spec.target_accuracy)
        rejection = self._policy_error(source)
        if rejection:
            return EvalResult(**base, outcome="rejected", error=rejection)
        timeout = self.limits.timeout_for(track)
        request = dict(op="eval", source=source, track=track, steps=steps, seed_set=seed_set,
                       submission=submission, timeout_s=timeout, memory_mb=self.limits.memory_mb,
                       friendly=self.limits.check_policy,
                       gradient_noise_seed=gradient_noise_seed, gate_step=gate_step, gate_threshold=gate_threshold)
        payload = self._ask(request, timeout + WORKER_GRACE_S)
        if payload.get("outcome", "ok") != "ok" or "track" not in payload:
            return EvalResult(**base, outcome=payload.get("outcome", "crash"), error=payload.get("error"),
                              total_s=payload.get("total_s", float("nan")), isolation=self.isolation)
        return EvalResult.model_validate({**payload, "isolation": self.isolation})

    def probe(self, source: str) -> ProbeResult:
        """A few steps on a tiny problem: is the candidate alive, and what does it compute?"""
        rejection = self._policy_error(source)
        if rejection:
            return ProbeResult(None, rejection)
        payload = self._ask(dict(op="probe", source=source, timeout_s=PROBE_TIMEOUT_S,
                                 memory_mb=self.limits.memory_mb, friendly=self.limits.check_policy),
                            PROBE_TIMEOUT_S + WORKER_GRACE_S)
        if payload.get("outcome", "ok") != "ok":
            return ProbeResult(None, f"{payload.get('outcome', 'crash')}: {payload.get('error')}")
        return ProbeResult(payload.get("fingerprint"), payload.get("probe_error"))

    def warm(self, track: str, seed_set: str = "benchmark", steps: int | None = None) -> float:
        """Builds a track's data in the worker ahead of the first candidate; returns the seconds it took."""
        payload = self._ask(dict(op="warm", track=track, seed_set=seed_set, steps=steps), WORKER_GRACE_S * 10)
        if not payload.get("ok"):
            raise RuntimeError(f"worker could not build {track} data: {payload.get('error')}")
        return payload["data_build_s"]

    def interrupt(self) -> None:
        """From another thread: kill the worker now. The request in flight ends as a `crash`, and no
        replacement worker starts (a Ctrl-C must not wait for a 150-second candidate)."""
        self.interrupted = True
        proc = self.proc
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def close(self) -> None:
        if self.proc is not None:
            _kill(self.proc)
            self.proc = None

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ internals
    def _policy_error(self, source: str) -> str | None:
        if not self.limits.check_policy:
            return None
        try:
            enforce(source)
        except PolicyError as err:
            return f"policy: {err}"
        return None

    def _start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "evaluator.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env=clean_environment(self.device, self.cpu), cwd="/", start_new_session=True)
        hello = self._exchange({"op": "ping"}, 300.0)
        if not hello.get("ok"):
            self.close()
            raise RuntimeError(f"the sandbox cannot start: {hello.get('error')}")
        self.isolation = hello.get("isolation")

    def _ask(self, request: dict, deadline_s: float) -> dict:
        """Sends a request. A worker that died under it is replaced and the request re-queued once;
        one that stopped answering is replaced and the request reported as a timeout."""
        for attempt in (1, 2):
            if self.interrupted:
                return {"outcome": "crash", "error": "worker: interrupted, the pool is closing"}
            try:
                if self.proc is None or self.proc.poll() is not None:
                    self._start()
                return self._exchange(request, deadline_s)
            except WorkerDied as err:
                self.close()
                self.restarts += 1
                hung = "answer" in str(err)
                if hung or attempt == 2:
                    return {"outcome": "timeout" if hung else "crash", "error": f"worker: {err}"}
        raise AssertionError("unreachable")

    def _exchange(self, request: dict, deadline_s: float) -> dict:
        assert self.proc is not None and self.proc.stdin and self.proc.stdout
        try:
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as err:
            raise WorkerDied(f"the worker process is gone ({err})") from None
        fd = self.proc.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], deadline_s)
        if not ready:
            raise WorkerDied(f"no answer within {deadline_s:g} s")
        line = self.proc.stdout.readline(MAX_ANSWER_BYTES)
        if not line:
            raise WorkerDied(f"the worker process exited ({self.proc.wait()})")
        try:
            answer = json.loads(line)
        except ValueError:
            raise WorkerDied("the worker sent a malformed reply") from None
        if not isinstance(answer, dict):
            raise WorkerDied("the worker sent a malformed reply")
        return answer


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()
    for stream in (proc.stdin, proc.stdout):
        if stream:
            stream.close()
