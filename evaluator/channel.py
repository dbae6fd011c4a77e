"""What passes between the trusted worker and a candidate's process, and nothing more.

Two things cross the wall. A shared-memory file (a sealed memfd) holds the candidate's source,
then every parameter and every gradient as flat tensors; both sides map it. A SOCK_SEQPACKET
socket carries small framed messages: one op byte, the session's nonce, a sequence number and a
capped payload. The worker writes gradients and asks for a step, naming the region and, per parameter,
the slot that holds its gradient; the candidate's process steps its
optimizer on the shared parameters and answers with the gradient regions its optimizer still holds
a tensor on (a byte of bits); the worker's model trains on the shared parameters
and evaluates a private copy of them (evaluator/remote.py). The candidate's process never sees the
model, the data, the loss or the evaluation.

Everything read from the candidate's side is distrusted: a message that is too long, carries the
wrong nonce or sequence number, or has an unknown op is that candidate's crash, never the worker's.
"""

from __future__ import annotations

import fcntl
import json
import mmap
import os
import select
import socket
import struct
import time
from dataclasses import dataclass

import torch

HEADER = struct.Struct("<c8sI")  # op, nonce, sequence number
MAX_MESSAGE = 64 * 1024  # longest message either side accepts (an error report, an RNG state)
MAX_SOURCE = 1 << 20  # longest candidate file the worker will ship
ALIGN = 64
GRAD_BUFFERS = 3  # gradient regions: a step's goes to one the optimizer holds no tensor on (remote.py)
MAX_PARAMS = 32_000  # parameter tensors: a step request names each one's gradient slot in two bytes

INIT, READY, STEP, DONE, ERROR = b"I", b"R", b"S", b"D", b"E"
DTYPES = {str(d): d for d in (torch.float32, torch.float64, torch.float16, torch.bfloat16)}


class ChannelError(RuntimeError):
    """The other side broke the protocol: what it sent is not a message this session expects."""


class CandidateFailed(RuntimeError):
    """The candidate's process reported a failure, died, or ran out of time: an outcome, not a bug."""

    def __init__(self, outcome: str, error: str) -> None:
        super().__init__(error)
        self.outcome = outcome
        self.error = error


@dataclass(frozen=True)
class Slot:
    offset: int
    shape: tuple[int, ...]
    dtype: str

    @property
    def numel(self) -> int:
        n = 1
        for size in self.shape:
            n *= size
        return n

    @property
    def nbytes(self) -> int:
        return self.numel * DTYPES[self.dtype].itemsize


@dataclass(frozen=True)
class Layout:
    """Where the source, each parameter and each gradient live in the shared file."""

    source_bytes: int
    params: tuple[Slot, ...]
    grads: tuple[tuple[Slot, ...], ...]  # GRAD_BUFFERS regions, each a slot per parameter
    size: int

    @classmethod
    def plan(cls, source_bytes: int, tensors: list[torch.Tensor]) -> "Layout":
        def align(n: int) -> int:
            return (n + ALIGN - 1) // ALIGN * ALIGN

        if len(tensors) > MAX_PARAMS:
            raise ValueError(f"{len(tensors)} parameter tensors; the channel carries at most {MAX_PARAMS}")
        offset = align(source_bytes)
        regions = []
        for _ in range(1 + GRAD_BUFFERS):  # parameters, then the gradient regions, of the same shapes
            slots = []
            for t in tensors:
                slot = Slot(offset, tuple(t.shape), str(t.dtype))
                if slot.dtype not in DTYPES:
                    raise ValueError(f"parameters of dtype {slot.dtype} are not supported")
                slots.append(slot)
                offset = align(offset + slot.nbytes)
            regions.append(tuple(slots))
        return cls(source_bytes, regions[0], tuple(regions[1:]), max(offset, ALIGN))

    def to_json(self) -> dict:
        def rows(slots):
            return [[s.offset, list(s.shape), s.dtype] for s in slots]

        return {"source_bytes": self.source_bytes, "size": self.size, "params": rows(self.params),
                "grads": [rows(region) for region in self.grads]}

    @classmethod
    def from_json(cls, data: dict) -> "Layout":
        def slots(rows) -> tuple[Slot, ...]:
            return tuple(Slot(int(o), tuple(int(n) for n in shape), str(d)) for o, shape, d in rows)

        return cls(int(data["source_bytes"]), slots(data["params"]), tuple(slots(r) for r in data["grads"]),
                   int(data["size"]))


class SharedTensors:
    """The shared file mapped into this process, with a tensor view per slot."""

    def __init__(self, fd: int, layout: Layout) -> None:
        self.layout = layout
        self.map = mmap.mmap(fd, layout.size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self.params = [self._view(s) for s in layout.params]
        self.grads = [[self._view(s) for s in region] for region in layout.grads]

    def _view(self, slot: Slot) -> torch.Tensor:
        if slot.offset + slot.nbytes > self.layout.size or slot.offset % ALIGN:
            raise ChannelError("a tensor slot lies outside the shared file")
        flat = torch.frombuffer(self.map, dtype=DTYPES[slot.dtype], count=slot.numel, offset=slot.offset)
        return flat.view(slot.shape)

    def read_source(self) -> str:
        return bytes(self.map[: self.layout.source_bytes]).decode("utf-8")

    def close(self) -> None:
        self.params = self.grads = []
        try:
            self.map.close()
        except BufferError:  # a tensor view is still alive somewhere: the mapping goes with the process
            pass


def create_shared_file(source: bytes, layout: Layout) -> int:
    """A memfd holding the source, sealed so the other side can neither shrink nor grow it
    (shrinking would turn the worker's next access into a SIGBUS)."""
    fd = os.memfd_create("synth-candidate", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    os.ftruncate(fd, layout.size)
    os.pwrite(fd, source, 0)
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
    return fd


# ------------------------------------------------------------------ framed messages
def pack(op: bytes, nonce: bytes, seq: int, payload: bytes = b"") -> bytes:
    message = HEADER.pack(op, nonce, seq) + payload
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE]
    return message


def send(sock: socket.socket, op: bytes, nonce: bytes, seq: int, payload: bytes = b"") -> None:
    sock.sendall(pack(op, nonce, seq, payload))


def receive(sock: socket.socket, deadline: float | None) -> bytes | None:
    """One message, or None at end of stream. Raises TimeoutError past the deadline."""
    while deadline is not None:
        wait = deadline - time.monotonic()
        if wait <= 0:
            raise TimeoutError
        ready, _, _ = select.select([sock], [], [], wait)
        if ready:
            break
    try:
        data = sock.recv(MAX_MESSAGE + 1)
    except ConnectionResetError:
        return None
    if not data:
        return None
    if len(data) > MAX_MESSAGE:
        raise ChannelError(f"a message longer than {MAX_MESSAGE} bytes")
    return data


def expect(data: bytes | None, nonce: bytes, seq: int, ops: tuple[bytes, ...]) -> tuple[bytes, bytes]:
    """Checks a received message against what the session expects; returns (op, payload)."""
    if data is None:
        raise ChannelError("the channel closed")
    if len(data) < HEADER.size:
        raise ChannelError(f"a message of {len(data)} bytes, shorter than its header")
    op, got_nonce, got_seq = HEADER.unpack_from(data)
    if got_nonce != nonce:
        raise ChannelError("a message with the wrong nonce")
    if op not in ops:
        raise ChannelError(f"op {op!r} where {b'/'.join(ops).decode()} was expected")
    if got_seq != seq:
        raise ChannelError(f"message {got_seq} where {seq} was expected")
    return op, data[HEADER.size:]


def error_payload(outcome: str, error: str) -> bytes:
    return json.dumps({"outcome": outcome, "error": error[:8000]}).encode()


def parse_error(payload: bytes) -> CandidateFailed:
    """An error report from the candidate's side; only its two strings are believed, and capped."""
    try:
        data = json.loads(payload.decode("utf-8", errors="replace"))
        outcome, error = str(data.get("outcome", "crash")), str(data.get("error", ""))
    except (ValueError, AttributeError):
        return CandidateFailed("crash", "the candidate's process sent a malformed error report")
    if outcome not in ("crash", "oom", "rejected", "nonfinite"):
        outcome = "crash"
    return CandidateFailed(outcome, error[:4000])
