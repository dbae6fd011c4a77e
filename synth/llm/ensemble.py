"""Several models as one: weighted choice per call, hard token/USD budgets per run, and keeping a
provider that fails out of the way.

A call is three steps so the network part can run on another thread:
`prepare` (pick a model, check the budget, look the prompt up in the reply cache), `call` (the
request itself: thread-safe, touches no shared state) and `settle` (count what it cost, note
failures). `complete` does all three in a row.

Budgets are hard: a call is made only if its worst case -- the prompt's tokens plus `max_tokens`
at the model's price, on top of what is spent and what calls in flight may still spend -- fits.
`spent` starts from the run database's totals, so a resumed run keeps the budget it had.

A provider that cannot answer at all (no key, auth refused, server gone) is disabled for the run;
one that failed `max_failures` calls in a row (timeouts, server errors, malformed replies) cools
down for `cooldown_s`, doubled each time, then gets another chance. `notices` collects one line
per event worth telling the user; the engine prints each once.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from synth.llm.base import Completion, LLMError, LLMUnavailable, Provider, estimate_tokens, one_line
from synth.llm.pricing import price_of
from synth.llm.spec import LLMSpec

Cache = Callable[[LLMSpec, str, str], Optional[Completion]]  # (spec, system, user) -> an earlier reply


class BudgetExhausted(LLMError):
    """The run's LLM budget cannot cover another call, or no provider is left; LLM operators stop."""

    outcome = "budget"


@dataclass
class Ticket:
    """One prepared call: the model, the messages, and the worst case reserved against the budget."""

    spec: LLMSpec
    system: str
    user: str
    worst_tokens: int
    worst_usd: float
    cached: Optional[Completion] = None
    provider: Optional[Provider] = None


class LLMEnsemble:
    def __init__(self, specs: Sequence[LLMSpec], budget_tokens: int | None = None,
                 budget_usd: float | None = None, factory: Callable[[LLMSpec], Provider] | None = None,
                 max_failures: int = 2, cooldown_s: float = 60.0, spent: dict | None = None,
                 cache: Cache | None = None):
        if not specs:
            raise ValueError("LLMEnsemble needs at least one LLM spec")
        if factory is None:
            from synth.llm.registry import load_provider as factory
        self.specs = list(specs)
        self.budget_tokens = budget_tokens
        self.budget_usd = budget_usd
        spent = spent or {}
        self.calls = int(spent.get("calls") or 0)
        self.tokens_in = int(spent.get("tokens_in") or 0)
        self.tokens_out = int(spent.get("tokens_out") or 0)
        self.cost_usd = float(spent.get("cost_usd") or 0.0)
        self.notices: list[str] = []
        self.disabled: dict[str, str] = {}  # spec label -> reason
        self.max_failures = max_failures
        self.cooldown_s = cooldown_s
        self._cooling: dict[str, float] = {}  # spec label -> time.monotonic() when it may be asked again
        self._cooldowns: dict[str, int] = {}  # spec label -> cool-downs so far (the next one is doubled)
        self._failures: dict[str, int] = {}  # spec label -> failed calls in a row
        self._factory = factory
        self._providers: dict[int, Provider] = {}
        self._budget_noted = False
        self._reserved_tokens = 0
        self._reserved_usd = 0.0
        self._next_worst: Optional[tuple[int, float]] = None  # the last refused call's worst case
        self.cache = cache
        self.last_spec: LLMSpec | None = None  # the spec of the latest call, also when it raised

    @property
    def tokens(self) -> int:
        return self.tokens_in + self.tokens_out

    @property
    def enabled(self) -> list[LLMSpec]:
        return [spec for spec in self.specs if spec.label not in self.disabled]

    @property
    def ready(self) -> list[LLMSpec]:
        """Enabled and not cooling down."""
        now = time.monotonic()
        return [spec for spec in self.enabled if self._cooling.get(spec.label, 0.0) <= now]

    @property
    def stop_reason(self) -> str | None:
        """Why no more calls can be made in this run, or None."""
        worst_tokens, worst_usd = self._next_worst or (0, 0.0)
        if self.budget_tokens is not None and (self.tokens >= self.budget_tokens or self._next_worst is not None
                                               and self.tokens + worst_tokens > self.budget_tokens):
            return (f"token budget spent ({self.tokens} of {self.budget_tokens} used"
                    + (f"; the next call could need {worst_tokens})" if self._next_worst else ")"))
        if self.budget_usd is not None and (self.cost_usd >= self.budget_usd or self._next_worst is not None
                                            and self.cost_usd + worst_usd > self.budget_usd):
            return (f"cost budget spent (${self.cost_usd:.4f} of ${self.budget_usd:.4f}"
                    + (f"; the next call could cost ${worst_usd:.4f})" if self._next_worst else ")"))
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
        """A spec drawn by weight among the ready ones (deterministic for a seeded rng)."""
        ready = self.ready or self.enabled
        return rng.choices(ready, weights=[spec.weight for spec in ready])[0]

    # ------------------------------------------------------------------ one call in three steps
    def prepare(self, system: str, user: str, rng: random.Random) -> Ticket:
        """Pick a model and reserve the call's worst case; BudgetExhausted if it does not fit."""
        if not self.enabled:
            raise BudgetExhausted(self.stop_reason)
        spec = self.last_spec = self.pick(rng)
        cached = self.cache(spec, system, user) if self.cache is not None else None
        if cached is not None:  # paid for already: replayed even when the budget is spent
            return Ticket(spec, system, user, 0, 0.0, cached)
        if self.exhausted:
            raise BudgetExhausted(self.stop_reason)
        try:
            provider = self._provider(spec)  # made here, on the caller's thread, once per spec
        except LLMUnavailable as exc:
            self.disable(spec, str(exc))
            raise
        prompt_tokens = estimate_tokens(system) + estimate_tokens(user)
        worst_tokens = prompt_tokens + spec.max_tokens
        price = price_of(spec) or (0.0, 0.0)
        worst_usd = (prompt_tokens * price[0] + spec.max_tokens * price[1]) / 1e6
        over_tokens = (self.budget_tokens is not None
                       and self.tokens + self._reserved_tokens + worst_tokens > self.budget_tokens)
        over_usd = self.budget_usd is not None and self.cost_usd + self._reserved_usd + worst_usd > self.budget_usd
        if over_tokens or over_usd:
            if not self._reserved_tokens and not self._reserved_usd:  # nothing in flight: it will never fit
                self._next_worst = (worst_tokens, worst_usd)
                self.exhausted  # noqa: B018 -- notes the stop once
                raise BudgetExhausted(self.stop_reason)
            raise BudgetExhausted("budget reserved by calls in flight")
        self._reserved_tokens += worst_tokens
        self._reserved_usd += worst_usd
        return Ticket(spec, system, user, worst_tokens, worst_usd, provider=provider)

    def call(self, ticket: Ticket) -> Completion:
        """The request; any failure (a plugin's too) is an LLMError carrying its real latency."""
        if ticket.cached is not None:
            return ticket.cached
        spec = ticket.spec
        start = time.perf_counter()
        try:
            done = ticket.provider.complete(ticket.system, ticket.user, temperature=spec.temperature,
                                     max_tokens=spec.max_tokens)
        except LLMError as exc:
            exc.latency_s = exc.latency_s or time.perf_counter() - start
            raise
        except Exception as exc:  # a provider plugin's own bug must not reach the engine
            raise LLMError(f"{spec.label}: provider failed: {type(exc).__name__}: {one_line(exc)}",
                           time.perf_counter() - start) from None
        if not isinstance(done, Completion) or not isinstance(done.text, str):
            raise LLMError(f"{spec.label}: provider returned {type(done).__name__}, not a Completion",
                           time.perf_counter() - start)
        return done

    def settle(self, ticket: Ticket, done: Completion | None, error: LLMError | None = None) -> None:
        """Release the reservation, count what the call cost, and note a failure."""
        self._reserved_tokens -= ticket.worst_tokens
        self._reserved_usd -= ticket.worst_usd
        if ticket.cached is not None:
            return  # paid and counted when it was first made
        paid = done or (error.completion if error is not None else None)
        if paid is not None:
            self.calls += 1
            self.tokens_in += paid.tokens_in
            self.tokens_out += paid.tokens_out
            self.cost_usd += paid.cost_usd
            if paid.estimated:
                self._note(f"{ticket.spec.label} sent no token usage: tokens are estimated at 4 characters each")
        spec = ticket.spec
        if error is None:
            self._failures[spec.label] = 0
        elif isinstance(error, LLMUnavailable):
            self.disable(spec, str(error))
        else:
            failures = self._failures[spec.label] = self._failures.get(spec.label, 0) + 1
            if failures >= self.max_failures:
                self._failures[spec.label] = 0
                rounds = self._cooldowns[spec.label] = self._cooldowns.get(spec.label, 0) + 1
                pause = min(self.cooldown_s * 2 ** (rounds - 1), 3600.0)
                self._cooling[spec.label] = time.monotonic() + pause
                self.notices.append(f"LLM {spec.label} cools down for {pause:g} s after {failures} failed calls "
                                    f"in a row: {error}")

    def complete(self, system: str, user: str, rng: random.Random) -> tuple[Completion, LLMSpec]:
        """prepare + call + settle; raises BudgetExhausted or the provider's LLMError."""
        ticket = self.prepare(system, user, rng)
        try:
            done = self.call(ticket)
        except LLMError as exc:
            self.settle(ticket, None, exc)
            raise
        self.settle(ticket, done)
        return done, ticket.spec

    # ------------------------------------------------------------------ bookkeeping
    def disable(self, spec: LLMSpec, reason: str) -> None:
        if spec.label not in self.disabled:
            self.disabled[spec.label] = reason
            self.notices.append(f"LLM {spec.label} disabled for the rest of this run: {reason}")

    def _note(self, line: str) -> None:
        if line not in self.notices:
            self.notices.append(line)

    def _provider(self, spec: LLMSpec) -> Provider:
        key = id(spec)
        if key not in self._providers:
            try:
                provider = self._factory(spec)
            except LLMError:
                raise
            except Exception as exc:
                raise LLMUnavailable(f"{spec.label}: provider could not start: {type(exc).__name__}: "
                                     f"{one_line(exc)}") from None
            note = getattr(provider, "price_note", None)
            if note:
                self._note(note)
            self._providers[key] = provider
        return self._providers[key]
