"""Many warm workers on a Ray cluster: the same interface as `evaluator.pool.LocalPool`.

One Ray actor per slot, each owning one `Sandbox` (one warm worker subprocess that builds the
track data once). Candidate code still only runs inside that sandboxed worker, whose environment
is an allowlist: nothing of the engine's environment (API keys) is forwarded to Ray.

Scheduling is ours, on top of Ray: a dispatcher thread hands each queued job to a free actor and
`ray.wait`s on the calls in flight. Actors are created with `max_restarts=-1`, so Ray restarts a
lost actor (its constructor runs again and the next call starts a fresh worker); calls use
`max_task_retries=0`, so Ray never re-runs a call behind our back. A call that fails because its
actor was lost is re-queued by the dispatcher (at most `MAX_REQUEUES` times, then recorded as a
`crash`); every job's future is resolved exactly once, so `evaluate_many` yields each key once.

Ray is optional: `pip install "synth[ray]"`.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from evaluator.pool import Backend, EvalJob, parse_devices, run_job
from evaluator.probe import ProbeResult
from evaluator.record import EvalResult
from evaluator.sandbox import Limits, Sandbox
from evaluator.tracks import get_track

try:
    import ray
    from ray.exceptions import RayActorError, WorkerCrashedError
except ImportError:  # pragma: no cover - exercised only where ray is absent
    ray = None

MAX_REQUEUES = 2  # a job whose actor is lost runs at most 1 + MAX_REQUEUES times
POLL_S = 0.05  # how often the dispatcher looks for new jobs while calls are in flight
REPING_S = 0.5  # a lost actor is pinged this often until Ray has restarted it
REPLACE_AFTER_S = 300.0  # an actor not back after this long is replaced by a new one


def _require_ray() -> None:
    if ray is None:
        raise RuntimeError('the Ray backend needs ray: pip install "synth[ray]"')


class SlotActor:
    """Lives in a Ray worker process: one Sandbox, called one request at a time."""

    def __init__(self, limits: Limits, device: str) -> None:
        self.sandbox = Sandbox(limits, device=device)
        self.busy = False

    def evaluate(self, job: EvalJob) -> EvalResult:
        self.busy = True
        try:
            return run_job(self.sandbox, job)
        finally:
            self.busy = False

    def probe(self, source: str) -> ProbeResult:
        self.busy = True
        try:
            return self.sandbox.probe(source)
        finally:
            self.busy = False

    def warm(self, track: str, seed_set: str, steps: int | None) -> float:
        return self.sandbox.warm(track, seed_set, steps)

    def close(self) -> None:
        self.sandbox.close()

    # control calls: their own concurrency group, so they answer while a job runs
    def pid(self) -> int:
        return os.getpid()

    def is_busy(self) -> bool:
        return self.busy


@dataclass
class _Task:
    op: str  # "evaluate" | "probe"
    arg: Any
    future: Future
    attempts: int = 0
    errors: list[str] = field(default_factory=list)


def _lost(task: _Task) -> Any:
    """The recorded outcome of a job whose actor was lost on every attempt."""
    error = f"worker lost: the Ray actor died {task.attempts} times ({task.errors[-1] if task.errors else '?'})"
    if task.op == "probe":
        return ProbeResult(None, f"crash: {error}")
    job: EvalJob = task.arg
    spec = get_track(job.track)
    return EvalResult(track=job.track, seed_set=job.seed_set, submission=job.submission,
                      max_steps=job.steps or spec.max_steps, eval_every=spec.eval_every,
                      train_samples=spec.train_samples, eval_samples=spec.eval_samples, batch_size=spec.batch_size,
                      target_mse=spec.target_mse, target_accuracy=spec.target_accuracy, outcome="crash", error=error)


class RayPool(Backend):
    """One Ray actor (one warm Sandbox) per slot; a job goes to whichever actor is free. Thread-safe."""

    def __init__(self, workers: int | None = None, limits: Limits = Limits(), devices: str = "cpu",
                 address: str | None = None, runtime_env: dict | None = None) -> None:
        _require_ray()
        self.devices = parse_devices(devices, workers)
        self.started_ray = False
        if not ray.is_initialized():
            # no env_vars: the engine's secrets stay here; each Sandbox builds its worker's env from an allowlist
            options: dict[str, Any] = dict(logging_level=logging.WARNING)
            if runtime_env:  # e.g. {"py_modules": [...]} where synth is not installed on the cluster's nodes
                options["runtime_env"] = runtime_env
            if address:  # "auto" or "ray://HOST:PORT": an existing cluster, its resources are its own
                ray.init(address=address, **options)
            else:
                ray.init(num_cpus=len(self.devices), include_dashboard=False, log_to_driver=False, **options)
            self.started_ray = True
        self.limits = limits
        self.remote = ray.remote(concurrency_groups={"control": 1})(SlotActor)
        try:
            self.actors = [self._new_actor(device) for device in self.devices]
        except BaseException:
            if self.started_ray:
                ray.shutdown()
            raise
        self.requeued = 0  # job attempts re-queued because their actor was lost
        self.lock = threading.Condition()
        self.pending: collections.deque[_Task] = collections.deque()
        self.free: list[int] = list(range(len(self.actors)))  # actor indices ready for a job
        self.inflight: dict[Any, tuple[int, _Task]] = {}  # ObjectRef -> (actor index, task)
        self.reviving: dict[int, list] = {}  # lost actor index -> [ping ref or None, next ping at, lost since]
        self.closed = False
        self.dispatcher = threading.Thread(target=self._dispatch, name="synth-ray-dispatch", daemon=True)
        self.dispatcher.start()

    @property
    def size(self) -> int:
        return len(self.actors)

    # ------------------------------------------------------------------ public
    def submit_eval(self, job: EvalJob) -> Future:
        return self._submit("evaluate", job)

    def submit_probe(self, source: str) -> Future:
        return self._submit("probe", source)

    def warm(self, track: str, steps: int | None = None, seed_set: str = "benchmark") -> None:
        """Builds the track's data in every actor's worker at once (a lost actor rebuilds it lazily)."""
        refs = [actor.warm.remote(track, seed_set, steps) for actor in self.actors]
        for ref in refs:
            try:
                ray.get(ref)
            except (RayActorError, WorkerCrashedError):
                pass

    def pids(self) -> list[int]:
        """Each actor's process id (answers even while the actor runs a job)."""
        return ray.get([actor.pid.options(concurrency_group="control").remote() for actor in self.actors])

    def busy(self) -> list[bool]:
        """Whether each actor is inside a job right now (answers even while the actor runs a job)."""
        return ray.get([actor.is_busy.options(concurrency_group="control").remote() for actor in self.actors])

    def close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
            self.lock.notify_all()
            abandoned = list(self.pending) + [task for _, task in self.inflight.values()]
            self.pending.clear()
        self.dispatcher.join(timeout=5)
        for task in abandoned:
            if not task.future.done():
                task.future.cancel() or task.future.set_exception(RuntimeError("the Ray pool was closed"))
        if ray.is_initialized():
            closing = [actor.close.remote() for actor in self.actors]
            ray.wait(closing, num_returns=len(closing), timeout=5)  # stops the sandbox workers cleanly
            for actor in self.actors:
                try:
                    ray.kill(actor, no_restart=True)
                except Exception:  # noqa: BLE001 - already gone
                    pass
        if self.started_ray:
            ray.shutdown()

    # ------------------------------------------------------------------ internals
    def _new_actor(self, device: str):
        gpu = device.startswith("cuda")
        # Ray masks CUDA_VISIBLE_DEVICES to the GPU it assigned: inside the actor that GPU is cuda:0
        return self.remote.options(
            num_cpus=1, num_gpus=1 if gpu else 0, max_restarts=-1, max_task_retries=0,
        ).remote(self.limits, "cuda:0" if gpu else "cpu")

    def _submit(self, op: str, arg: Any) -> Future:
        future: Future = Future()
        with self.lock:
            if self.closed:
                raise RuntimeError("the Ray pool is closed")
            self.pending.append(_Task(op, arg, future))
            self.lock.notify_all()
        return future

    def _dispatch(self) -> None:
        while True:
            with self.lock:
                while not self.closed and not self.inflight and not self.pending and not self.reviving:
                    self.lock.wait()
                if self.closed:
                    return
                while self.pending and self.free:
                    task = self.pending.popleft()
                    if task.attempts == 0 and not task.future.set_running_or_notify_cancel():
                        continue  # cancelled before it started
                    index = self.free.pop(0)
                    task.attempts += 1
                    ref = getattr(self.actors[index], task.op).remote(task.arg)
                    self.inflight[ref] = (index, task)
                pings = self._ping_lost()
                refs = list(self.inflight) + list(pings)
            if not refs:
                threading.Event().wait(POLL_S)
                continue
            ready, _ = ray.wait(refs, num_returns=1, timeout=POLL_S)
            for ref in ready:
                if ref in pings:
                    self._pinged(pings[ref], ref)
                else:
                    self._finish(ref)

    def _ping_lost(self) -> dict:
        """Pings each lost actor (due ones only); returns {ping ref: actor index} of pings in flight."""
        now = time.monotonic()
        pings = {}
        for index, state in self.reviving.items():
            ref, next_at, since = state
            if ref is None and now >= next_at:
                if now - since > REPLACE_AFTER_S:  # not coming back: a fresh actor takes the slot
                    try:
                        ray.kill(self.actors[index], no_restart=True)
                    except Exception:  # noqa: BLE001 - already gone
                        pass
                    self.actors[index] = self._new_actor(self.devices[index])
                    state[2] = now
                ref = state[0] = self.actors[index].pid.options(concurrency_group="control").remote()
            if ref is not None:
                pings[ref] = index
        return pings

    def _pinged(self, index: int, ref: Any) -> None:
        try:
            ray.get(ref)
            alive = True
        except Exception:  # noqa: BLE001 - still restarting (or gone): ping again later
            alive = False
        with self.lock:
            state = self.reviving[index]
            if alive:
                del self.reviving[index]
                self.free.append(index)
            else:
                state[0], state[1] = None, time.monotonic() + REPING_S

    def _finish(self, ref: Any) -> None:
        try:
            value, error = ray.get(ref), None
        except (RayActorError, WorkerCrashedError) as err:  # ActorDiedError, ActorUnavailableError too
            value, error = None, err
        except BaseException as err:  # noqa: BLE001 - the call itself raised: hand it to the caller
            value, error = None, err
        with self.lock:
            index, task = self.inflight.pop(ref)
            lost = isinstance(error, (RayActorError, WorkerCrashedError))
            if lost:  # Ray restarts it; it gets work again once it answers a ping
                self.reviving.setdefault(index, [None, 0.0, time.monotonic()])
            else:
                self.free.append(index)
            if self.closed:
                return
            if lost:
                task.errors.append(type(error).__name__)
                if task.attempts <= MAX_REQUEUES:
                    self.requeued += 1
                    self.pending.appendleft(task)
                    return
                value, error = _lost(task), None
        if error is None:
            task.future.set_result(value)
        else:
            task.future.set_exception(getattr(error, "cause", None) or error)
