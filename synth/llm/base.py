"""What every provider returns and raises, so the engine never touches an SDK type.

Errors carry one line meant for a person, and never a key: messages that come from a server
pass through `one_line(..., secrets=...)`, which strips any secret value before it is shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Protocol, runtime_checkable


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


class LLMError(Exception):
    """Any failure to get a usable reply; str() is one line."""


class LLMUnavailable(LLMError):
    """The provider cannot answer in this run (no key, auth refused, unknown model, server down)."""


class LLMTimeout(LLMError):
    """No reply within the per-call timeout (after the SDK's own retries)."""


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
