"""The candidate host: runs inside the jail, forks one confined process per candidate.

Started by evaluator/jail.py under bubblewrap with one inherited descriptor, its control socket
to the trusted worker. It imports torch once (so a candidate costs a fork, not an interpreter),
drops to an unprivileged uid if it started as root, makes itself undumpable, loads its seccomp
filter, and then serves `run` requests. Each request brings a sealed shared file (the source, the
parameters, the gradients) and the candidate's own channel socket; the host forks, and the child
confines itself further and serves steps until the worker closes the channel (channel.py).

Nothing in this process ever holds the model, the data or the evaluation: there is nothing here
for a candidate to read, patch or forge but its own parameters, gradients and state.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sys
import traceback

import torch
from torch import nn

from evaluator import channel, confine

UNPRIVILEGED = 65534  # nobody
TRACEBACK_TAIL_LINES = 12
CANDIDATE_FILENAME = "submission.py"


def main(control_fd: int, scratch_root: str = "/tmp") -> None:
    """`scratch_root` is the jail's private /tmp, whose contents are wiped after every candidate."""
    import math  # noqa: F401 - candidates import it, perhaps after the host lost the right to read it

    control = socket.socket(fileno=control_fd)
    confine.die_with_parent()
    torch.set_num_threads(1)
    _warm_torch()
    confine.load_seccomp()  # before the uid changes: the library may live where uid 65534 cannot read
    if os.getuid() == 0:  # bubblewrap left us root only to do this; all capabilities go with it
        os.chown(scratch_root, UNPRIVILEGED, UNPRIVILEGED)
        os.setgroups([])
        os.setgid(UNPRIVILEGED)
        os.setuid(UNPRIVILEGED)
    confine.undumpable()
    filtered = confine.host_filter()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    control.sendall(json.dumps({"op": "ready", "uid": os.getuid(), "seccomp": filtered}).encode())
    count = 0
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, channel.MAX_MESSAGE, 2)
        except OSError:
            return
        if not message:
            return  # the worker went away
        count += 1
        _serve_one(control, json.loads(message), fds, os.path.join(scratch_root, f"c{count}"))


def _serve_one(control: socket.socket, request: dict, fds: list[int], scratch: str) -> None:
    os.mkdir(scratch, 0o700)
    pid = os.fork()
    if pid == 0:  # ------------------------------------------ the candidate's process
        code = 0
        try:
            control.close()
            shared_fd, channel_fd = fds
            run_candidate(request, shared_fd, channel_fd, scratch)
        except BaseException:  # noqa: BLE001 - whatever happens, this process ends here
            code = 70
        os._exit(code)
    for fd in fds:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    try:
        os.killpg(pid, signal.SIGKILL)  # its threads' group; fork is refused, so nothing else
    except (ProcessLookupError, PermissionError):
        pass
    output = _tail(os.path.join(scratch, "output.log"))
    _wipe(os.path.dirname(scratch))
    control.sendall(json.dumps({"op": "exited", "status": status, "output": output}).encode())


def run_candidate(request: dict, shared_fd: int, channel_fd: int, scratch: str) -> None:
    os.setpgid(0, 0)
    os.chdir(scratch)
    log = os.open("output.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    devnull = os.open(os.devnull, os.O_RDONLY)
    for target, fd in ((0, devnull), (1, log), (2, log)):
        os.dup2(fd, target)
    os.close(log)
    os.close(devnull)
    confine.close_other_fds({shared_fd, channel_fd})
    sys.stdout = open(1, "w", closefd=False, buffering=1)
    sys.stderr = open(2, "w", closefd=False, buffering=1)
    sock = socket.socket(fileno=channel_fd)
    nonce = bytes.fromhex(request["nonce"])
    shared = channel.SharedTensors(shared_fd, channel.Layout.from_json(request["layout"]))
    os.close(shared_fd)  # the mapping keeps the memory; the descriptor is one less thing to hold
    source = shared.read_source()
    confine.limit_resources(request.get("memory_mb"))
    confine.candidate_filter()
    if request.get("friendly", True):
        confine.friendly_audit_hook(scratch)
    Stepper(sock, nonce, shared).serve(source)


class Stepper:
    """The candidate's side of the channel: build the optimizer, then one step per request."""

    def __init__(self, sock: socket.socket, nonce: bytes, shared: channel.SharedTensors) -> None:
        self.sock, self.nonce, self.shared = sock, nonce, shared
        # The optimizer steps the shared parameters in place and reads the shared gradients: no copy on
        # either side. The worker's model trains on these very tensors, but evaluates a private copy
        # it takes first, so what is written here between steps reaches only the next gradients.
        self.params = [nn.Parameter(t) for t in shared.params]
        self.homes = [_where(t) for t in shared.params]
        # The gradient slots' own tensors are never handed out (the optimizer gets a fresh view of one
        # each step, whose `.data` it may rebind), so their storages stay ours to count: a tensor more on
        # one after a step means the optimizer kept that gradient, or a view of it, and the worker must
        # not overwrite the region yet.
        self.storages = [[t.untyped_storage()._cdata for t in region] for region in shared.grads]
        self.ours = [self._tensors_on(r) for r in range(channel.GRAD_BUFFERS)]
        self.held = 0

    def serve(self, source: str) -> None:
        _, rng_state = channel.expect(channel.receive(self.sock, None), self.nonce, 0, (channel.INIT,))
        try:
            torch.set_rng_state(torch.frombuffer(bytearray(rng_state), dtype=torch.uint8))
            namespace: dict = {"__name__": "submission", "__file__": CANDIDATE_FILENAME}
            exec(compile(source, CANDIDATE_FILENAME, "exec"), namespace)  # noqa: S102 - confined above
            optimizer_cls = namespace.get("Submission")
            if optimizer_cls is None:
                raise LookupError("the file defines no Submission class")
            optimizer = optimizer_cls(self.params)
            self._publish()
        except BaseException as exc:  # noqa: BLE001 - every failure is a reported outcome
            return self._report(exc, 0)
        channel.send(self.sock, channel.READY, self.nonce, 0)
        step = 0
        while True:
            message = channel.receive(self.sock, None)
            if message is None:
                return
            step += 1
            _, request = channel.expect(message, self.nonce, step, (channel.STEP,))
            try:
                self._hand_over(request)
                optimizer.step()
                self._publish()
                for p in self.params:
                    p.grad = None  # the harness's next zero_grad(set_to_none=True), early: nothing runs between
                self.held = self._held_regions(self.held | 1 << request[0])
            except BaseException as exc:  # noqa: BLE001
                return self._report(exc, step)
            channel.send(self.sock, channel.DONE, self.nonce, step, bytes([self.held]))

    def _hand_over(self, request: bytes) -> None:
        """The step's gradients, as the optimizer's `p.grad`: fresh tensors, as autograd's are (a method:
        no local keeps one past it). The request names the region, then each parameter's slot in it."""
        if len(request) != 1 + 2 * len(self.params) or request[0] >= channel.GRAD_BUFFERS:
            raise channel.ChannelError(f"a step request of {len(request)} bytes")
        slots = self.shared.grads[request[0]]
        for p, where in zip(self.params, memoryview(request)[1:].cast("H")):
            if not where:
                p.grad = None
                continue
            slot = slots[where - 1] if where <= len(slots) else None
            if slot is None or slot.shape != p.shape or slot.dtype != p.dtype:
                raise channel.ChannelError(f"a gradient slot {where - 1} that does not fit its parameter")
            p.grad = slot.view(slot.shape)

    def _publish(self) -> None:
        """A parameter whose `p.data` the optimizer rebound no longer lives in the shared file: copy it there."""
        for p, home, shared in zip(self.params, self.homes, self.shared.params):
            if _where(p) != home:
                with torch.no_grad():
                    shared.copy_(p.detach())

    def _held_regions(self, candidates: int) -> int:
        """Of the `candidates` regions (bits), those the optimizer still holds a tensor on: a kept
        `p.grad`, a view of it. The worker writes the next gradients elsewhere, so what the optimizer
        kept is a gradient no later step overwrites, as in the benchmark's own process."""
        if _STORAGE_USE_COUNT is None:
            return candidates  # cannot tell: every region handed out counts as kept, so regions rotate
        held = 0
        for r in range(channel.GRAD_BUFFERS):
            if candidates >> r & 1 and any(now > ours for now, ours in zip(self._tensors_on(r), self.ours[r])):
                held |= 1 << r
        return held

    def _tensors_on(self, region: int) -> list[int]:
        """How many tensors lie on each of a region's gradient slots."""
        return [_use_count(s) for s in self.storages[region]]

    def _report(self, exc: BaseException, seq: int) -> None:
        outcome, error = classify(exc)
        channel.send(self.sock, channel.ERROR, self.nonce, seq, channel.error_payload(outcome, error))


_STORAGE_USE_COUNT = getattr(torch._C, "_storage_Use_Count", None)  # private: a torch without it rotates regions


def _use_count(storage: int) -> int:
    return _STORAGE_USE_COUNT(storage) if _STORAGE_USE_COUNT is not None else 0


def _where(t: torch.Tensor) -> tuple:
    """Where a tensor's values lie, and in what layout."""
    return t.data_ptr(), t.dtype, t.shape, t.stride()


def classify(exc: BaseException) -> tuple[str, str]:
    """An exception in the candidate's process, as an outcome and a short error."""
    if confine.violations:
        return "rejected", confine.violations[0]
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, MemoryError) or "can't allocate memory" in text or "not enough memory" in text:
        return "oom", text.splitlines()[0][:300]
    if isinstance(exc, LookupError) and "no Submission class" in text:
        return "rejected", str(exc)
    lines = traceback.format_exception(exc)
    return "crash", "\n".join("".join(lines).strip().splitlines()[-TRACEBACK_TAIL_LINES:])


def _warm_torch() -> None:
    """One step of a few optimizers, so torch's lazy imports happen once here, not in every child."""
    p = nn.Parameter(torch.ones(4, 4))
    for make in (lambda: torch.optim.AdamW([p], lr=1e-3), lambda: torch.optim.SGD([p], lr=1e-3, momentum=0.9)):
        optimizer = make()
        p.grad = torch.ones(4, 4)
        optimizer.step()
    torch.linalg.svd(torch.ones(3, 3))
    torch.randn(2, generator=torch.Generator().manual_seed(0))


def _tail(path: str, limit: int = 2000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - limit))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def _wipe(root: str) -> None:
    """Nothing a candidate left behind may reach the next one."""
    for name in os.listdir(root):
        path = os.path.join(root, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.unlink(path)
            except OSError:
                pass

