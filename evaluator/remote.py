"""The trusted side of one candidate: a stand-in optimizer whose `step` runs in the jail.

The benchmark's loop (evaluator/loop.py) builds the model, computes the loss and gradients and
evaluates, all in the trusted worker; it calls `RemoteOptimizer(model.parameters())` and
`.step()` as it would any optimizer. Each step writes the gradients into the shared file and asks
the candidate's process to step its real optimizer on the shared parameters. What the candidate's
optimizer sees is exactly what it would see in the benchmark's own process: the same parameter
values, each step's gradients (None where the harness has none) where no gradient it kept from an
earlier step lies, and torch's global RNG in the state the harness leaves it in after building the
student. The gradients go to one of GRAD_BUFFERS regions of the shared file: the first the
optimizer's process reports it holds no tensor on, so an optimizer that keeps none uses one region,
warm in the cache, and one that keeps the last two steps' gradients uncopied still sees them intact.
Embedding gradients are not copied there: autograd writes them into that region's slots as it computes
them (evaluator/direct_grads.py), and each step tells the candidate's process which slot holds which
parameter's gradient. Not in the gradient-noise probe: there the trusted side reads the gradients to
shape the noise, and it reads nothing the candidate's process can write.

Where the parameters come back (on CPU), nothing is copied: after each step the model's parameters
*are* the shared tensors (`p.data` points into the shared file) for the next forward and backward,
and before every evaluation `snapshot()` copies them into the model's own tensors and points the
model there. So the candidate's process, which can write the shared file at any moment (a thread it
left running), reaches only the training forward and backward, that is only its own gradients and
the recorded training loss: any parameter vector it could write then, it could have written at step
time (no forward indexes by a parameter's value, so a racing write steers no memory access here).
Evaluations, the gate and the final finite-check read a private snapshot it cannot touch.
On a GPU (and for a strided parameter) the parameters are copied back after each step instead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from array import array

import torch

from evaluator import channel, direct_grads
from evaluator.channel import CandidateFailed
from evaluator.jail import Jail

EXIT_REPORT_S = 10.0  # how long the host may take to reap a finished candidate and wipe its /tmp


class CandidateSession:
    """One candidate's process in the jail, from launch to exit. Always `close()` it."""

    def __init__(self, jail: Jail, source: str, timeout_s: float, memory_mb: int | None, friendly: bool = True,
                 direct: bool = True) -> None:
        self.jail, self.source, self.timeout_s, self.memory_mb = jail, source.encode("utf-8"), timeout_s, memory_mb
        self.friendly = friendly  # the audit hook's early, readable errors (off only to test the wall itself)
        self.direct = direct  # whether autograd may write embedding gradients straight into the shared file
        self.exits = contextlib.ExitStack()
        self.deadline = float("inf")
        self.sock: socket.socket | None = None
        self.shared: channel.SharedTensors | None = None
        self.nonce = os.urandom(8)
        self.seq = 0
        self.exit_report: dict | None = None
        self.setup_s = float("nan")
        self.params: list[torch.Tensor] = []  # the model's parameters
        self.private: list[torch.Tensor] = []  # the model's own storage, for the snapshots
        self.on_host = True  # whether the model's parameters can be the shared tensors (host memory, contiguous)
        self.aliased = False  # whether the model's parameters are the shared tensors right now
        self.region = 0  # the gradient region of the last step
        self.next_region = 0  # where the coming step's gradients go
        self.claimed: list[bool] = []  # the next region's slots autograd has written a gradient into
        self.held = 0  # a bit per region the candidate's optimizer still holds a gradient tensor on
        self.written = [0] * channel.GRAD_BUFFERS  # the step that last wrote each region
        self.copied_bytes = 0  # gradient bytes copied into the shared file, for the record
        self.slot_at: list[dict[int, int]] = []  # per region, the slot at each address

    # ------------------------------------------------------------------ the optimizer's two calls
    def open(self, params: list[torch.Tensor]) -> None:
        """Starts the candidate's process and builds `Submission(params)` there."""
        self.jail.ensure()  # a restart after a killed candidate is not the next one's time
        started = time.perf_counter()
        self.deadline = time.monotonic() + self.timeout_s
        if len(self.source) > channel.MAX_SOURCE:
            raise CandidateFailed("rejected", f"the file is over {channel.MAX_SOURCE} bytes")
        layout = channel.Layout.plan(len(self.source), [p.detach() for p in params])
        fd = channel.create_shared_file(self.source, layout)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.shared = channel.SharedTensors(fd, layout)
            with torch.no_grad():
                for shared, p in zip(self.shared.params, params):
                    shared.copy_(p.detach())
            self.jail.launch({"op": "run", "nonce": self.nonce.hex(), "layout": layout.to_json(),
                              "memory_mb": self.memory_mb, "friendly": self.friendly}, [fd, theirs.fileno()])
        finally:
            os.close(fd)
            theirs.close()
        self.sock = ours
        rng = torch.get_rng_state().numpy().tobytes()  # the harness's state right after building the student
        channel.send(self.sock, channel.INIT, self.nonce, 0, rng)
        self._await(channel.READY)
        self.params = list(params)
        self.private = [p.data for p in self.params]
        # a strided parameter keeps its layout, and so the benchmark's exact kernels, by being copied
        self.on_host = all(p.device.type == "cpu" and p.is_contiguous() for p in self.params)
        with torch.no_grad():  # what the candidate's constructor left: the initial evaluation's values
            for private, shared in zip(self.private, self.shared.params):
                private.copy_(shared)
        self.claimed = [False] * len(self.params)
        self.slot_at = [{slot.data_ptr(): j for j, slot in enumerate(region)} for region in self.shared.grads]
        if self.direct and self.on_host and all(p.dtype in direct_grads.EXACT_DTYPES for p in self.params):
            self.exits.enter_context(direct_grads.into(self.claim))
        self.setup_s = time.perf_counter() - started

    def claim(self, shape: tuple[int, int], dtype: torch.dtype) -> torch.Tensor | None:
        """A slot of the coming step's region for autograd to write a gradient into (a fresh view of it,
        which autograd makes the parameter's `.grad`), or None where no free one fits."""
        for j, slot in enumerate(self.shared.grads[self.next_region]):
            if not self.claimed[j] and slot.shape == shape and slot.dtype == dtype:
                self.claimed[j] = True
                return slot.view(slot.shape)
        return None

    def step(self) -> None:
        self.seq += 1
        assert self.shared is not None
        region = self.region = self.next_region
        self.written[region] = self.seq
        where = self._place_gradients(region)
        channel.send(self.sock, channel.STEP, self.nonce, self.seq, bytes([region]) + where.tobytes())
        self.held = self._await(channel.DONE, payload_bytes=1)[0]
        self.next_region = self._free_region()
        self.claimed = [False] * len(self.params)
        self._take_parameters()

    def _place_gradients(self, region: int) -> array:
        """Each parameter's slot in `region` (0: no gradient, j + 1: slot j). A gradient autograd wrote
        into a slot stays there; the others are copied, each to its own parameter's slot where free."""
        slots, slot_at = self.shared.grads[region], self.slot_at[region]
        where = array("H", bytes(2 * len(self.params)))
        taken = [False] * len(slots)
        to_copy = []
        for i, p in enumerate(self.params):
            grad = p.grad
            if grad is None:
                continue
            j = slot_at.get(grad.data_ptr())
            if j is not None and not taken[j] and grad.shape == slots[j].shape and grad.dtype == slots[j].dtype \
                    and grad.is_contiguous():
                taken[j] = True
                where[i] = j + 1
            else:
                to_copy.append(i)
        with torch.no_grad():
            for i in to_copy:
                j = i if not taken[i] else next(j for j, slot in enumerate(slots) if not taken[j]
                                                and slot.shape == slots[i].shape and slot.dtype == slots[i].dtype)
                slots[j].copy_(self.params[i].grad)
                self.copied_bytes += slots[j].nbytes
                taken[j] = True
                where[i] = j + 1
        return where

    def _free_region(self) -> int:
        """Where this step's gradients go: the first region the optimizer holds nothing on (so one
        region, warm in the cache, for an optimizer that keeps no gradient); if it holds all of them,
        the oldest, so it may keep the last GRAD_BUFFERS - 1 steps' gradients uncopied."""
        for region in range(channel.GRAD_BUFFERS):
            if not self.held >> region & 1:
                return region
        return min(range(channel.GRAD_BUFFERS), key=self.written.__getitem__)

    def _take_parameters(self) -> None:
        """Host-memory parameters become the shared tensors (no copy); a GPU's get a copy of them."""
        if not self.on_host:
            with torch.no_grad():
                for p, shared in zip(self.params, self.shared.params):
                    p.copy_(shared)
        elif not self.aliased:
            for p, shared in zip(self.params, self.shared.params):
                p.data = shared
            self.aliased = True

    def snapshot(self) -> None:
        """Before an evaluation: the model reads private copies of the parameters, so nothing the
        candidate's process writes from now on reaches that evaluation or the final finite-check."""
        self._make_private()

    def _make_private(self) -> None:
        if not self.aliased:
            return  # the model has held private values since the last step
        with torch.no_grad():
            for p, private, shared in zip(self.params, self.private, self.shared.params):
                private.copy_(shared)
                p.data = private
        self.aliased = False

    def _await(self, op: bytes, payload_bytes: int | None = None) -> bytes:
        """The candidate's answer `op` (its payload of `payload_bytes`, if given), or its failure raised."""
        try:
            data = channel.receive(self.sock, self.deadline)
            if data is None:
                raise CandidateFailed("crash", self._how_it_died())
            got, payload = channel.expect(data, self.nonce, self.seq, (op, channel.ERROR))
            if got == op and payload_bytes is not None and len(payload) != payload_bytes:
                raise channel.ChannelError(f"a {len(payload)}-byte payload where {payload_bytes} were expected")
        except TimeoutError:
            self.jail.kill()
            self.exit_report = {}
            raise CandidateFailed("timeout", "") from None
        except channel.ChannelError as err:
            self.jail.kill()
            self.exit_report = {}
            raise CandidateFailed("crash", f"the candidate's process broke the protocol: {err}") from None
        if got == channel.ERROR:
            raise channel.parse_error(payload)
        return payload

    # ------------------------------------------------------------------ the end
    def _how_it_died(self) -> str:
        try:
            self.exit_report = self.jail.receive(time.monotonic() + EXIT_REPORT_S)
        except (TimeoutError, channel.ChannelError):
            self.jail.kill()
            self.exit_report = {}
            return "the candidate's process died without a word"
        return died_how(self.exit_report.get("status"), str(self.exit_report.get("output", "")))

    def close(self) -> None:
        """Ends the candidate's process and waits until the host has cleaned up after it."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
            if self.exit_report is None:
                try:
                    self.exit_report = self.jail.receive(time.monotonic() + EXIT_REPORT_S)
                except (TimeoutError, channel.ChannelError):
                    self.jail.kill()
        self.exits.close()  # the native embedding kernel is back before the file goes
        if self.shared is not None:
            self._make_private()  # a run that failed mid-way leaves the model on the shared file: unmap it cleanly
            for p in self.params:
                if p.grad is not None and any(p.grad.data_ptr() in slot_at for slot_at in self.slot_at):
                    p.grad = None  # the last step's gradients, which autograd wrote into the file
            self.params = self.private = []
            self.shared.close()
            self.shared = None


class RemoteOptimizer:
    """What the trusted loop holds instead of the candidate's optimizer: the two calls the loop makes.

    Not a torch Optimizer: its profiling wrapper and grouped zero_grad would run here on top of the
    candidate's own, which runs in the candidate's process (that one is the benchmark's)."""

    def __init__(self, params, session: CandidateSession) -> None:
        self.params = list(params)
        self.session = session
        session.open(self.params)

    def zero_grad(self, set_to_none: bool = True) -> None:  # noqa: ARG002 - the harness always drops them
        for p in self.params:
            p.grad = None

    def step(self, closure=None) -> None:  # noqa: ARG002 - the harness never passes one
        self.session.step()


def died_how(status, output: str) -> str:
    if not isinstance(status, int):
        how = "the candidate's process ended"
    elif os.WIFSIGNALED(status):
        how = f"the candidate's process was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    else:
        how = f"the candidate's process exited with status {os.waitstatus_to_exitcode(status)} before reporting"
    last = output.strip().splitlines()[-1:] if output.strip() else []
    return how + (f"; last output: {last[0][:200]}" if last else "")
