"""The warm worker process: builds a track's data once, then scores each candidate in a fork.

Run as `python -m evaluator.worker`, spoken to over stdin/stdout in JSON lines (see
`evaluator.sandbox`). Forking after the data is built and torch is warmed up makes isolation cost
milliseconds: the child shares the data copy-on-write, confines itself, runs the candidate, writes
one JSON result to a pipe and exits. A crash, hang or flood in the child never reaches us.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import sys
import tempfile
import time
import traceback

if __name__ == "__main__":  # before torch starts threads: namespaces need a single-threaded process
    from evaluator.confine import die_with_parent, isolate_network

    die_with_parent()
    NETWORK_ISOLATION = isolate_network()
else:
    NETWORK_ISOLATION = "none"

import torch  # noqa: E402

from evaluator import confine  # noqa: E402
from evaluator.loop import Gate, NonFiniteError, train  # noqa: E402
from evaluator.probe import run_probe  # noqa: E402
from evaluator.tracks import build_track_data, get_track, seed_set  # noqa: E402

TRACEBACK_TAIL_LINES = 12
DATA_CACHE_SIZE = 3  # track datasets a worker keeps (random_teacher's is ~700 MB)


class Worker:
    def __init__(self, device: str = "cpu") -> None:
        torch.set_num_threads(1)
        self.device = device
        self.data: dict[tuple, object] = {}
        self.scratch_root = tempfile.mkdtemp(prefix="synth-worker-")
        self._warm_torch()

    def _warm_torch(self) -> None:
        """Runs a trusted optimizer once so torch's lazy imports happen here, not in every child."""
        run_probe(lambda params: torch.optim.AdamW(params, lr=1e-3))

    def track_data(self, track: str, seeds: str, steps: int | None):
        spec = get_track(track)
        rows = max(spec.max_steps, steps or 0)
        key = (track, seeds, rows)
        if key in self.data:
            self.data[key] = self.data.pop(key)  # most recently used last
        else:
            while len(self.data) >= DATA_CACHE_SIZE:
                self.data.pop(next(iter(self.data)))
            self.data[key] = build_track_data(spec, seed_set(seeds), max_steps=rows)
            train(lambda params: torch.optim.SGD(params, lr=0.0), self.data[key], steps=1)  # warm the loop's path
        return self.data[key]

    # ------------------------------------------------------------------ requests
    def handle(self, request: dict) -> dict:
        op = request.get("op")
        if op == "ping":
            return {"ok": True, "pid": os.getpid(), "network": NETWORK_ISOLATION}
        if op == "warm":
            data = self.track_data(request["track"], request.get("seed_set", "benchmark"), request.get("steps"))
            return {"ok": True, "data_build_s": data.build_seconds}
        if op == "eval":
            data = self.track_data(request["track"], request.get("seed_set", "benchmark"), request.get("steps"))
            steps, name = request.get("steps"), request.get("submission", "")
            noise_seed = request.get("gradient_noise_seed")
            gate = Gate(request["gate_step"], request.get("gate_threshold")) if request.get("gate_step") else None

            def score(optimizer_cls):
                # CUDA cannot be used in a child forked after the parent initialised it: the worker keeps
                # the data on the CPU and each child moves it to its GPU (memory freed when it exits).
                return train(optimizer_cls, data.to(self.device), steps=steps, submission=name,
                             gradient_noise_seed=noise_seed, gate=gate).model_dump(mode="json")

            if self.device != "cpu":
                request = {**request, "memory_mb": None}  # CUDA reserves address space far beyond any cap
            payload = self.isolated(score, request)
            payload["data_build_s"] = data.build_seconds
            return payload
        if op == "probe":
            def probe(optimizer_cls):
                result = run_probe(optimizer_cls)
                return {"fingerprint": result.fingerprint, "probe_error": result.error}
            return self.isolated(probe, request)
        return {"outcome": "crash", "error": f"worker: unknown op {op!r}"}

    def isolated(self, job, request: dict) -> dict:
        """Runs `job(Submission)` on the candidate's source in a confined child; never raises."""
        timeout_s = float(request.get("timeout_s", 60))
        scratch = tempfile.mkdtemp(dir=self.scratch_root)
        read_end, write_end = os.pipe()
        started = time.perf_counter()
        pid = os.fork()
        if pid == 0:  # ------------------------------------------------ the candidate's process
            os.close(read_end)
            try:
                payload = self._child(job, request, scratch)
            except BaseException as exc:  # noqa: BLE001 - everything becomes a recorded outcome
                payload = classify(exc)
            try:
                os.write(write_end, json.dumps(payload).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        raw, timed_out = read_until(read_end, started + timeout_s)
        if timed_out:
            kill_group(pid)
        _, status = os.waitpid(pid, 0)
        os.close(read_end)
        output = tail_of(os.path.join(scratch, "output.log"))
        shutil.rmtree(scratch, ignore_errors=True)
        total = time.perf_counter() - started
        if timed_out:
            payload = {"outcome": "timeout", "error": f"killed after the {timeout_s:g} s wall-clock limit"}
        else:
            try:
                payload = json.loads(raw)
            except ValueError:
                payload = {"outcome": "crash", "error": died_how(status, output)}
        payload["total_s"] = total
        return payload

    def _child(self, job, request: dict, scratch: str) -> dict:
        started = time.perf_counter()
        confine.confine_child(scratch, request.get("memory_mb"))
        namespace: dict = {"__name__": "submission", "__file__": os.path.join(scratch, "submission.py")}
        exec(compile(request["source"], confine.CANDIDATE_FILENAME, "exec"), namespace)  # noqa: S102 - confined above
        optimizer_cls = namespace.get("Submission")
        if optimizer_cls is None:
            return {"outcome": "rejected", "error": "the file defines no Submission class"}
        before = confine.integrity_snapshot()
        setup = time.perf_counter() - started
        try:
            payload = job(optimizer_cls)
        finally:  # a patched harness usually breaks the run: the patch, not the crash, is the verdict
            changed = confine.integrity_changes(before)
            if changed:
                confine.violations.append(f"monkeypatch: the candidate changed {', '.join(changed)}")
        if confine.violations:
            return {"outcome": "rejected", "error": confine.violations[0]}
        payload["setup_s"] = setup
        return payload


def classify(exc: BaseException) -> dict:
    """An exception from the candidate's process, as an outcome and a short error."""
    if confine.violations:
        return {"outcome": "rejected", "error": confine.violations[0]}
    if isinstance(exc, NonFiniteError):
        return {"outcome": "nonfinite", "error": str(exc)}
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, MemoryError) or "can't allocate memory" in text or "not enough memory" in text:
        return {"outcome": "oom", "error": text.splitlines()[0][:300]}
    lines = traceback.format_exception(exc)
    tail = "".join(lines).strip().splitlines()[-TRACEBACK_TAIL_LINES:]
    return {"outcome": "crash", "error": "\n".join(tail)}


def read_until(fd: int, deadline: float) -> tuple[bytes, bool]:
    chunks = []
    while True:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            return b"".join(chunks), True
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)


def kill_group(pid: int) -> None:
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            target()
        except (ProcessLookupError, PermissionError):
            pass


def died_how(status: int, output: str) -> str:
    if os.WIFSIGNALED(status):
        signame = signal.Signals(os.WTERMSIG(status)).name
        how = f"the candidate's process was killed by {signame}"
    else:
        how = f"the candidate's process exited with status {os.waitstatus_to_exitcode(status)} before reporting"
    last = output.strip().splitlines()[-1:] if output.strip() else []
    return how + (f"; last output: {last[0][:200]}" if last else "")


def tail_of(path: str, limit: int = 2000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - limit))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def main() -> None:
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints from torch or libraries go to stderr, never into the protocol
    worker = Worker(device=os.environ.get("SYNTH_DEVICE", "cpu"))
    for line in sys.stdin:
        try:
            response = worker.handle(json.loads(line))
        except Exception as exc:  # noqa: BLE001 - a bad request must not kill the worker
            response = {"outcome": "crash", "error": f"worker: {type(exc).__name__}: {exc}"}
        protocol.write(json.dumps(response) + "\n")


if __name__ == "__main__":
    main()
