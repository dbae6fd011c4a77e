"""Static policy: may this candidate optimizer file run at all?

Candidate files are untrusted Python (written by an LLM or evolved), and the benchmark can be won
by cheating (rebuilding the hidden teacher from its seed, reading the harness's data, touching the
global RNG). This module is the first of two layers: it reads the source as an AST, never runs it,
and rejects anything a torch.optim-style step never needs. It is deliberately strict about names
and cheap to run; what it cannot see (dynamic tricks, pure-Python reimplementations of the RNG) is
left to the second layer, the sandbox (evaluator/sandbox.py, evaluator/confine.py).

`check_source` returns every violation (never raises); `enforce` raises `PolicyError`, whose str is
one line: `line N: [rule] message`. The walk over the tree is policy_checker.py, the Submission contract
policy_contract.py, the rules themselves (data) policy_rules.py.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Iterable

from evaluator.policy_checker import Checker
from evaluator.policy_contract import check_contract
from evaluator.policy_rules import (  # noqa: F401 - the rules are read here and re-exported
    DEFAULT_ALLOWED_IMPORTS, CONTRACT, BENCHMARK_SEEDS, NAME_RULES, MODULE_RULES, TORCH_RULES,
    IMPORT_ONLY_FORBIDDEN, ALLOWED_PRIVATE_TORCH, ALWAYS_IMPORTABLE, REFLECTION, ALLOWED_DUNDER_DEFS,
    HARMLESS_DUNDERS, PATCH_ATTRS, TENSOR_FIELDS, PASS_THROUGH_CALLS, PLAIN_VALUES, OWN_NAMES_ALLOWED,
    FORMAT_GADGET, OPTIMIZER_CLASSES, BASE_OPTIMIZER)

# ------------------------------------------------------------------ public API
@dataclass(frozen=True)
class Violation:
    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: [{self.rule}] {' '.join(self.message.split())}"


class PolicyError(ValueError):
    """The candidate file breaks the static policy; `.violations` lists every reason."""

    def __init__(self, violations: list[Violation]):
        self.violations = list(violations)
        more = f" (+{len(self.violations) - 1} more)" if len(self.violations) > 1 else ""
        super().__init__(f"{self.violations[0]}{more}" if self.violations else "policy violation")


def check_source(source: str, allowed_imports: Iterable[str] = DEFAULT_ALLOWED_IMPORTS) -> list[Violation]:
    """Every policy violation in `source`, sorted by line; empty means the file may run."""
    try:
        if isinstance(source, (bytes, bytearray)):
            source = bytes(source).decode("utf-8")
        if not isinstance(source, str):
            return [Violation(1, "syntax", f"source must be text, not {type(source).__name__}")]
        try:
            tree = ast.parse(source)
        except SyntaxError as err:
            return [Violation(err.lineno or 1, "syntax", f"does not parse: {err.msg}")]
        checker = Checker(tree, allowed_imports)
        checker.visit(tree)
        check_contract(checker)
        return [Violation(*finding) for finding in checker.result()]
    except UnicodeDecodeError:
        return [Violation(1, "syntax", "source is not UTF-8 text")]
    except (ValueError, TypeError) as err:  # e.g. null bytes on some Python versions
        return [Violation(1, "syntax", f"does not parse: {err}")]
    except (RecursionError, MemoryError):
        return [Violation(1, "syntax", "source is too deeply nested to check")]
    except Exception as err:  # fail closed: a checker bug must never let a file through
        return [Violation(1, "internal", f"policy check failed: {type(err).__name__}: {err}")]


def enforce(source: str, allowed_imports: Iterable[str] = DEFAULT_ALLOWED_IMPORTS) -> None:
    """Raises PolicyError if `source` breaks the policy."""
    violations = check_source(source, allowed_imports)
    if violations:
        raise PolicyError(violations)
