"""USD per million tokens (input, output) for a few well-known models, to keep `--budget-usd` honest.

List prices as published by OpenAI and Anthropic in 2025; they change, so a spec's
`price_in`/`price_out` (or `--llm-price IN,OUT`) override them. A model matches a table entry
exactly, or as that entry plus a date or `-latest` ("claude-sonnet-4-5-20250929" ->
"claude-sonnet-4-5"), never by a looser prefix: `o3-pro` is not `o3` (it costs ten times more).
An unknown model has no price: its cost is counted as 0 and `price_note` says so, and a dollar
budget is refused for it (synth.config) until a price is given.
"""

from __future__ import annotations

import re

from synth.llm.spec import LLMSpec

DATE_SUFFIX = re.compile(r"-(\d{8}|\d{4}-\d{2}-\d{2}|latest)$")

PRICES: dict[str, tuple[float, float]] = {
    # OpenAI
    "gpt-5": (1.25, 10.00), "gpt-5-mini": (0.25, 2.00), "gpt-5-nano": (0.05, 0.40),
    "gpt-4.1": (2.00, 8.00), "gpt-4.1-mini": (0.40, 1.60), "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4o": (2.50, 10.00), "gpt-4o-mini": (0.15, 0.60),
    "o3": (2.00, 8.00), "o3-mini": (1.10, 4.40), "o4-mini": (1.10, 4.40),
    # Anthropic
    "claude-opus-4-5": (5.00, 25.00), "claude-opus-4-1": (15.00, 75.00), "claude-opus-4": (15.00, 75.00),
    "claude-sonnet-4-5": (3.00, 15.00), "claude-sonnet-4": (3.00, 15.00), "claude-3-7-sonnet": (3.00, 15.00),
    "claude-haiku-4-5": (1.00, 5.00), "claude-3-5-haiku": (0.80, 4.00),
}


def price_of(spec: LLMSpec) -> tuple[float, float] | None:
    """(in, out) USD per million tokens, or None when neither the spec nor the table knows."""
    table = PRICES.get(spec.model) or PRICES.get(DATE_SUFFIX.sub("", spec.model))
    if spec.price_in is None and spec.price_out is None:
        return table
    base = table or (0.0, 0.0)
    return (spec.price_in if spec.price_in is not None else base[0],
            spec.price_out if spec.price_out is not None else base[1])


def price_note(spec: LLMSpec) -> str | None:
    if price_of(spec) is not None:
        return None
    return (f"no price known for {spec.label}: its cost is counted as $0 "
            f"(add ,price_in=...,price_out=... in USD per million tokens to count it)")


def cost_usd(spec: LLMSpec, tokens_in: int, tokens_out: int) -> float:
    price = price_of(spec)
    if price is None:
        return 0.0
    return (tokens_in * price[0] + tokens_out * price[1]) / 1e6
