"""What every provider returns and raises, so the engine never touches an SDK type.

Errors carry one line meant for a person, and never a key: messages that come from a server
pass through `one_line(..., secrets=...)`, which strips any secret value before it is shown.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Protocol, TypeVar, runtime_checkable

T = TypeVar("T")
CHARS_PER_TOKEN = 4  # the usual rough figure; used when a reply carries no usage, and for worst cases


@dataclass(frozen=True)
class Completion:
    """One model reply and what it cost."""

    text: str
    tokens_in: int
    tokens_out: int
    cost_usd: float
    latency_s: float
    provider: str
    model: str
    estimated: bool = False  # the server sent no usage: tokens counted from the text (CHARS_PER_TOKEN)
    cached: bool = False  # replayed from the run database, not paid again


class LLMError(Exception):
    """Any failure to get a usable reply; str() is one line.

    `latency_s` is how long the failed call took; `completion` is set when a reply came but cannot be
    used (truncated at max_tokens): it was paid for, so its tokens count.
    """

    outcome = "error"

    def __init__(self, message: str, latency_s: float = 0.0, completion: Optional[Completion] = None):
        super().__init__(message)
        self.latency_s = latency_s
        self.completion = completion


class LLMMalformed(LLMError):
    """A reply the protocol does not allow (not JSON, HTML, no message, no text)."""

    outcome = "malformed"


class LLMTruncated(LLMError):
    """The reply stopped at max_tokens: an answer cut short is never applied."""

    outcome = "truncated"


class LLMUnavailable(LLMError):
    """The provider cannot answer in this run (no key, auth refused, unknown model, server down)."""

    outcome = "unavailable"


class LLMTimeout(LLMError):
    """No reply within the call's total deadline (retries included)."""

    outcome = "timeout"


@runtime_checkable
class Provider(Protocol):
    """A chat model: one system message, one user message, one text reply.

    Implementations are constructed as `cls(spec: LLMSpec)` (see `registry`); they may set
    `price_note` to a line explaining that costs are counted as 0 for an unpriced model.
    """

    def complete(self, system: str, user: str, *, temperature: float, max_tokens: int) -> Completion: ...


def one_line(message: object, secrets: Iterable[str | None] = (), limit: int = 300) -> str:
    """Collapse to one line, redact secret values, and cap the length."""
    text = " ".join(str(message).split())
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def with_deadline(attempt: Callable[[float], T], *, timeout_s: float, max_retries: int,
                  retry_after: Callable[[Exception], Optional[float]]) -> T:
    """Run `attempt(seconds_left)` until it succeeds, within one total deadline of `timeout_s`.

    `retry_after(exc)` says whether a failure is worth another try: None no, else the seconds the
    server asked to wait (negative: none asked, back off exponentially); a wait past the deadline ends it.
    the SDKs' own retries are off, so a hung server costs `timeout_s` in all, not (retries+1) times it.
    """
    deadline = time.monotonic() + timeout_s
    for tried in range(max_retries + 1):
        try:
            return attempt(max(0.01, deadline - time.monotonic()))
        except Exception as exc:
            wait = retry_after(exc)
            left = deadline - time.monotonic()
            if wait is None or tried == max_retries or left <= 0:
                raise
            wait = min(0.5 * 2 ** tried, 8.0) if wait < 0 else wait  # < 0: retryable, no retry-after given
            if wait >= left:
                raise
            time.sleep(wait)
    raise AssertionError("unreachable")
