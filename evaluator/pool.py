"""Many warm workers at once: the local backend (one Sandbox per slot, a thread feeding each).

A backend has one job: take (key, request) jobs, hand back (key, result) as each finishes.
`evaluator.ray_backend` offers the same interface on a Ray cluster.
"""

from __future__ import annotations

import os
import queue
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from evaluator.probe import ProbeResult
from evaluator.record import EvalResult
from evaluator.sandbox import Limits, Sandbox


@dataclass(frozen=True)
class EvalJob:
    source: str
    track: str
    steps: int | None = None
    seed_set: str = "benchmark"
    submission: str = ""
    gradient_noise_seed: int | None = None  # compliance probe: train on noise instead of gradients
    gate_step: int | None = None  # fidelity cascade: evaluate at this step ...
    gate_threshold: float | None = None  # ... and stop there if the metric falls short of this (None: never)


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)))


def parse_devices(devices: str, workers: int | None) -> list[str]:
    """`cpu` -> one slot per core (or --workers); `cuda:0,cuda:1` -> one slot per listed GPU."""
    names = [d.strip() for d in devices.split(",") if d.strip()]
    if not names:
        raise ValueError("--devices is empty: use 'cpu' or a list like 'cuda:0,cuda:1'")
    for name in names:
        if name != "cpu" and not (name.startswith("cuda:") and name[5:].isdigit()):
            raise ValueError(f"unknown device {name!r}: use 'cpu' or 'cuda:N'")
    if names == ["cpu"]:
        return ["cpu"] * (workers or default_workers())
    return [names[i % len(names)] for i in range(workers or len(names))]


def pinned_core(slot: int, cores: list[int]) -> int:
    """The core a CPU slot's worker and its candidates keep to, round robin over the cores this process
    may use (a `taskset` of the command is honoured). The worker and its candidate take turns, so one
    core loses nothing, and sharing it keeps the gradients and parameters in its caches and needs no
    cross-core wake-up: bench/eval_overhead.py measured the jail's overhead at about 1.37x unpinned and
    1.20x pinned on single_ar (README). Two synth commands at once should be given disjoint cores."""
    return cores[slot % len(cores)]


def run_job(sandbox: Sandbox, job: EvalJob) -> EvalResult:
    return sandbox.evaluate(job.source, job.track, steps=job.steps, seed_set=job.seed_set,
                            submission=job.submission, gradient_noise_seed=job.gradient_noise_seed,
                            gate_step=job.gate_step, gate_threshold=job.gate_threshold)


class Backend:
    """What the engine needs from a backend: submit jobs, get futures. The rest follows from that."""

    def submit_eval(self, job: EvalJob) -> Future:
        raise NotImplementedError

    def submit_probe(self, source: str) -> Future:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def evaluate_many(self, jobs: Iterable[tuple[Any, EvalJob]]) -> Iterator[tuple[Any, EvalResult]]:
        """Yields (key, result) in completion order; each key exactly once."""
        futures = {self.submit_eval(job): key for key, job in jobs}
        for future in as_completed(futures):
            yield futures[future], future.result()

    def probe(self, source: str) -> ProbeResult:
        return self.submit_probe(source).result()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LocalPool(Backend):
    """One Sandbox per slot; a job goes to whichever slot is free. Thread-safe."""

    def __init__(self, workers: int | None = None, limits: Limits = Limits(), devices: str = "cpu") -> None:
        names = parse_devices(devices, workers)
        cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []  # Linux only
        self.slots = [Sandbox(limits, device=d, cpu=pinned_core(i, cores) if d == "cpu" and cores else None)
                      for i, d in enumerate(names)]
        self.free: queue.Queue[Sandbox] = queue.Queue()
        for slot in self.slots:
            self.free.put(slot)
        self.executor = ThreadPoolExecutor(max_workers=len(self.slots), thread_name_prefix="synth-slot")

    @property
    def size(self) -> int:
        return len(self.slots)

    @property
    def isolation(self) -> str | None:
        """What confines candidates, in words, once a worker has started (they all share one host)."""
        return next((slot.isolation for slot in self.slots if slot.isolation), None)

    def _with_slot(self, fn, *args):
        slot = self.free.get()
        try:
            return fn(slot, *args)
        finally:
            self.free.put(slot)

    def submit_eval(self, job: EvalJob) -> Future:
        return self.executor.submit(self._with_slot, run_job, job)

    def submit_probe(self, source: str) -> Future:
        return self.executor.submit(self._with_slot, lambda s, src: s.probe(src), source)

    def warm(self, track: str, steps: int | None = None, seed_set: str = "benchmark") -> None:
        """Builds the track's data in every worker at once; call it before submitting jobs (it bypasses the
        free-slot queue to reach every slot)."""
        futures = [self.executor.submit(slot.warm, track, seed_set, steps) for slot in self.slots]
        for future in futures:
            future.result()

    def close(self) -> None:
        """Stops at once: queued jobs are cancelled and running ones killed (their candidates stay
        pending in the run database, so a resumed run scores them again)."""
        for slot in self.slots:
            slot.interrupt()
        self.executor.shutdown(wait=True, cancel_futures=True)
        for slot in self.slots:
            slot.close()
