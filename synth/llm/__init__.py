"""The LLM layer: providers behind one small interface, a weighted ensemble with budgets, reply parsing.

The engine only sees `LLMEnsemble` (prepare / call / settle) and the errors in `base`; which
SDK answered, and how it retried, stays in the provider modules.
"""

from synth.llm.base import Completion, LLMError, LLMMalformed, LLMTimeout, LLMTruncated, LLMUnavailable, Provider
from synth.llm.ensemble import BudgetExhausted, LLMEnsemble
from synth.llm.registry import installed_providers, load_provider
from synth.llm.spec import LLMSpec, key_status, parse_llm_spec

__all__ = [
    "BudgetExhausted", "Completion", "LLMEnsemble", "LLMError", "LLMMalformed", "LLMSpec", "LLMTimeout",
    "LLMTruncated", "LLMUnavailable",
    "Provider", "installed_providers", "key_status", "load_provider", "parse_llm_spec",
]
