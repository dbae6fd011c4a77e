"""The warm, trusted worker: builds a track's data once, then scores each candidate.

Run as `python -m evaluator.worker`, spoken to over stdin/stdout in JSON lines (see
`evaluator.sandbox`). The benchmark's loop runs here, in full: model, data, forward, backward,
evaluation and the result record. Only the optimizer's `step` runs elsewhere, in a candidate's
process inside the jail (evaluator/jail.py, remote.py), which sees parameters and gradients and
nothing else. No candidate code ever runs in this process.
"""

from __future__ import annotations

import json
import os
import sys
import time

if __name__ == "__main__":
    from evaluator.confine import die_with_parent

    die_with_parent()

import torch  # noqa: E402

from evaluator.channel import CandidateFailed  # noqa: E402
from evaluator.jail import Jail  # noqa: E402
from evaluator.loop import Gate, NonFiniteError, train  # noqa: E402
from evaluator.probe import run_probe  # noqa: E402
from evaluator.remote import CandidateSession, RemoteOptimizer  # noqa: E402
from evaluator.tracks import build_track_data, get_track, seed_set  # noqa: E402

DATA_CACHE_SIZE = 3  # track datasets a worker keeps (random_teacher's is ~700 MB)
MAX_REQUEST_BYTES = 8 << 20


class Worker:
    def __init__(self, device: str = "cpu") -> None:
        torch.set_num_threads(1)
        self.device = device
        self.data: dict[tuple, object] = {}
        self.jail = Jail()
        run_probe(lambda params: torch.optim.AdamW(params, lr=1e-3))  # torch's lazy imports, here and now

    def track_data(self, track: str, seeds: str, steps: int | None):
        spec = get_track(track)
        rows = max(spec.max_steps, steps or 0)
        key = (track, seeds, rows)
        if key in self.data:
            self.data[key] = self.data.pop(key)  # most recently used last
        else:
            while len(self.data) >= DATA_CACHE_SIZE:
                self.data.pop(next(iter(self.data)))
            data = build_track_data(spec, seed_set(seeds), max_steps=rows).to(self.device)
            train(lambda params: torch.optim.SGD(params, lr=0.0), data, steps=1)  # warm the loop's path
            self.data[key] = data
        return self.data[key]

    # ------------------------------------------------------------------ requests
    def handle(self, request: dict) -> dict:
        op = request.get("op")
        if op == "ping":
            self.jail.ensure()
            return {"ok": True, "pid": os.getpid(), "isolation": self.jail.isolation}
        if op == "warm":
            data = self.track_data(request["track"], request.get("seed_set", "benchmark"), request.get("steps"))
            self.jail.ensure()
            return {"ok": True, "data_build_s": data.build_seconds}
        if op == "eval":
            data = self.track_data(request["track"], request.get("seed_set", "benchmark"), request.get("steps"))
            gate = Gate(request["gate_step"], request.get("gate_threshold")) if request.get("gate_step") else None

            def score(optimizer_cls, snapshot):
                return train(optimizer_cls, data, steps=request.get("steps"), submission=request.get("submission", ""),
                             gradient_noise_seed=request.get("gradient_noise_seed"), gate=gate,
                             before_evaluate=snapshot).model_dump(mode="json")

            payload = self.run_candidate(score, request)
            payload["data_build_s"] = data.build_seconds
            return payload
        if op == "probe":
            def probe(optimizer_cls, snapshot):
                result = run_probe(optimizer_cls, before_reading=snapshot)
                return {"fingerprint": result.fingerprint, "probe_error": result.error}
            return self.run_candidate(probe, request)
        return {"outcome": "crash", "error": f"worker: unknown op {op!r}"}

    def run_candidate(self, job, request: dict) -> dict:
        """Runs `job(optimizer_cls, snapshot)` with the candidate's optimizer stepping in the jail; never
        raises for anything the candidate does. `snapshot()` must run before the job reads the
        parameters for a score (evaluator/remote.py)."""
        timeout_s = float(request.get("timeout_s", 60))
        started = time.perf_counter()
        # the noise probe reads the gradients to shape its noise: they must not lie where the candidate can write
        session = CandidateSession(self.jail, request["source"], timeout_s, request.get("memory_mb"),
                                   friendly=request.get("friendly", True),
                                   direct=request.get("gradient_noise_seed") is None)
        try:
            payload = job(lambda params: RemoteOptimizer(params, session), session.snapshot)
            payload["setup_s"] = session.setup_s
        except CandidateFailed as failed:
            error = failed.error
            if failed.outcome == "timeout":
                error = f"killed after the {timeout_s:g} s wall-clock limit"
            payload = {"outcome": failed.outcome, "error": error}
        except NonFiniteError as err:
            payload = {"outcome": "nonfinite", "error": str(err)}
        finally:
            session.close()
        payload["total_s"] = time.perf_counter() - started
        return payload

    def close(self) -> None:
        self.jail.kill()


def main() -> None:
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints from torch or libraries go to stderr, never into the protocol
    if os.environ.get("SYNTH_CPU"):
        # Before any thread or child exists, so the jail and every candidate inherit it: the worker and its
        # candidate take turns, and on one core they share its caches and need no cross-core wake-up.
        os.sched_setaffinity(0, {int(os.environ["SYNTH_CPU"])})
    worker = Worker(device=os.environ.get("SYNTH_DEVICE", "cpu"))
    try:
        while True:
            line = sys.stdin.buffer.readline(MAX_REQUEST_BYTES)
            if not line:
                break
            try:
                response = worker.handle(json.loads(line))
            except Exception as exc:  # noqa: BLE001 - a bad request must not kill the worker
                response = {"outcome": "crash", "error": f"worker: {type(exc).__name__}: {exc}"}
            protocol.write(json.dumps(response) + "\n")
    finally:
        worker.close()


if __name__ == "__main__":
    main()
