"""Several models as one: weighted choice per call, shared token/USD budgets, and dropping a provider
that cannot answer (no key, auth refused, server down) for the rest of the run, or that failed
`max_failures` calls in a row otherwise (timeouts, server errors: each already retried by the SDK).

`notices` collects one line per event worth telling the user (a disabled provider, an unpriced
model, a spent budget); the engine prints each once.
"""

from __future__ import annotations

import random
from typing import Callable, Sequence

from synth.llm.base import Completion, LLMError, LLMUnavailable, Provider
from synth.llm.spec import LLMSpec


class BudgetExhausted(LLMError):
    """The run's LLM budget is spent, or no provider is left; LLM operators stop."""


class LLMEnsemble:
    def __init__(self, specs: Sequence[LLMSpec], budget_tokens: int | None = None,
                 budget_usd: float | None = None, factory: Callable[[LLMSpec], Provider] | None = None,
                 max_failures: int = 2):
        if not specs:
            raise ValueError("LLMEnsemble needs at least one LLM spec")
        if factory is None:
            from synth.llm.registry import load_provider as factory
        self.specs = list(specs)
        self.budget_tokens = budget_tokens
        self.budget_usd = budget_usd
        self.tokens_in = self.tokens_out = self.calls = 0
        self.cost_usd = 0.0
        self.notices: list[str] = []
        self.disabled: dict[str, str] = {}  # spec label -> reason
        self._factory = factory
        self._providers: dict[int, Provider] = {}
        self._budget_noted = False
        self.max_failures = max_failures
        self._failures: dict[str, int] = {}  # spec label -> failed calls in a row
        self.last_spec: LLMSpec | None = None  # the spec of the latest call, also when it raised

    @property
    def tokens(self) -> int:
        return self.tokens_in + self.tokens_out

    @property
    def enabled(self) -> list[LLMSpec]:
        return [spec for spec in self.specs if spec.label not in self.disabled]

    @property
    def stop_reason(self) -> str | None:
        """Why no more LLM calls will be made, or None while they can."""
        if self.budget_tokens is not None and self.tokens >= self.budget_tokens:
            return f"LLM token budget spent ({self.tokens} of {self.budget_tokens} tokens)"
        if self.budget_usd is not None and self.cost_usd >= self.budget_usd:
            return f"LLM cost budget spent (${self.cost_usd:.4f} of ${self.budget_usd:.4f})"
        if not self.enabled:
            return "no LLM provider left (all disabled)"
        return None

    @property
    def exhausted(self) -> bool:
        reason = self.stop_reason
        if reason and not self._budget_noted:
            self._budget_noted = True
            self.notices.append(f"LLM operators stop: {reason}")
        return reason is not None

    def pick(self, rng: random.Random) -> LLMSpec:
        """A spec drawn by weight among the enabled ones (deterministic for a seeded rng)."""
        enabled = self.enabled
        return rng.choices(enabled, weights=[spec.weight for spec in enabled])[0]

    def complete(self, system: str, user: str, rng: random.Random) -> tuple[Completion, LLMSpec]:
        """Call one model; raise BudgetExhausted, or the provider's LLMError (disabling it if unavailable)."""
        if self.exhausted:
            raise BudgetExhausted(self.stop_reason)
        spec = self.last_spec = self.pick(rng)
        try:
            provider = self._provider(spec)
            completion = provider.complete(system, user, temperature=spec.temperature, max_tokens=spec.max_tokens)
        except LLMUnavailable as exc:
            self.disable(spec, str(exc))
            raise
        except LLMError as exc:
            failures = self._failures[spec.label] = self._failures.get(spec.label, 0) + 1
            if failures >= self.max_failures:
                self.disable(spec, f"{exc}; {failures} failed calls in a row")
            raise
        self._failures[spec.label] = 0
        self.calls += 1
        self.tokens_in += completion.tokens_in
        self.tokens_out += completion.tokens_out
        self.cost_usd += completion.cost_usd
        return completion, spec

    def disable(self, spec: LLMSpec, reason: str) -> None:
        if spec.label not in self.disabled:
            self.disabled[spec.label] = reason
            self.notices.append(f"LLM {spec.label} disabled for the rest of this run: {reason}")

    def usage(self) -> dict:
        """Totals for the run summary and the database."""
        return {"calls": self.calls, "tokens_in": self.tokens_in, "tokens_out": self.tokens_out,
                "cost_usd": self.cost_usd, "disabled": dict(self.disabled)}

    def _provider(self, spec: LLMSpec) -> Provider:
        key = id(spec)
        if key not in self._providers:
            provider = self._factory(spec)
            note = getattr(provider, "price_note", None)
            if note:
                self.notices.append(note)
            self._providers[key] = provider
        return self._providers[key]
