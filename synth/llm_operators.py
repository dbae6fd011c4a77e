"""LLM variation operators: ask a model for a child, check the reply, and repair it when it fails.

    propose("llm_edit", "program", ctx, ensemble, rng) -> Proposal

Registered by name in `LLM_OPERATORS` like the genetic ones in `synth.variation`. A reply is only
accepted after it applied / parsed / passed the policy check; otherwise the error goes back to the
model in a repair round (prompts/repair.txt), up to `max_repairs` times. Nothing unchecked is
returned with ok=True. Every call, good or bad, is in `Proposal.calls` for the run database.
"""

from __future__ import annotations

import ast
import random
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Literal, Optional

from prompts.render import PromptContext, render
from synth.llm.base import LLMError, LLMTimeout, LLMUnavailable
from synth.llm.edits import EditError, apply_edit, extract_fenced

Level = Literal["program", "code"]


@dataclass
class Proposal:
    """The outcome of one LLM proposal: a checked child (ok=True) or the reason there is none."""

    ok: bool
    kind: Level  # "program": genome is program text; "code": a code-only candidate (genome None)
    genome: Optional[str] = None  # canonical program text (Program.to_text()) for program-level children
    source: Optional[str] = None  # the Submission file that will be scored
    model: Optional[str] = None  # spec label of the model whose reply was accepted (or last tried)
    error: Optional[str] = None  # why there is no child, one line
    operator: str = ""
    repairs: int = 0  # repair rounds used
    calls: list[dict] = field(default_factory=list)  # see `_call_record`

    @property
    def params(self) -> dict:
        """Operator params for the candidate record, like a genetic operator's."""
        return {"level": self.kind, "model": self.model, "repairs": self.repairs, "calls": len(self.calls)}


class Rejected(Exception):
    """A reply that did not survive the checks; str() is one line for the repair prompt."""


def propose(operator: str, level: Level, ctx: PromptContext, ensemble, rng: random.Random,
            max_repairs: int = 2, templates_dir: Path | str | None = None) -> Proposal:
    """Ask `ensemble` for one child of ctx.parent (and ctx.other, for crossover) at `level`."""
    op = operator.removeprefix("llm_")
    if op not in ("edit", "rewrite", "crossover"):
        raise ValueError(f"unknown LLM operator {operator!r}: use one of {', '.join(LLM_OPERATORS)}")
    system, user = render(op, ctx, level, templates_dir)
    proposal = Proposal(ok=False, kind=level, operator=f"llm_{op}")
    for round_ in range(max_repairs + 1):
        if ensemble.exhausted:
            proposal.error = ensemble.stop_reason
            break
        try:
            completion, spec = ensemble.complete(system, user, rng)
        except LLMError as exc:
            proposal.error = str(exc)
            spec = getattr(ensemble, "last_spec", None)
            proposal.model = spec.label if spec else proposal.model
            proposal.calls.append(_call_record(proposal.operator, system, user, None, spec, _outcome(exc), str(exc)))
            break  # the SDK already retried; a transport failure is not the model's to repair
        proposal.model = spec.label
        try:
            genome, source = check_reply(op, level, ctx, completion.text)
        except Rejected as exc:
            proposal.error = str(exc)
            proposal.calls.append(_call_record(proposal.operator, system, user, completion, spec, "rejected", str(exc)))
            if round_ < max_repairs:
                proposal.repairs += 1
                user = render("repair", ctx, level, templates_dir, repair_of=op,
                              attempt=completion.text, error=str(exc))[1]
            continue
        proposal.calls.append(_call_record(proposal.operator, system, user, completion, spec, "ok", None))
        proposal.ok, proposal.genome, proposal.source, proposal.error = True, genome, source, None
        return proposal
    return proposal


def check_reply(op: str, level: Level, ctx: PromptContext, reply: str) -> tuple[str | None, str]:
    """(genome, source) for a reply that applies, parses and passes the policy; else Rejected."""
    try:
        if level == "program":
            text = apply_edit(ctx.parent.program, reply) if op == "edit" else extract_fenced(reply, "program")
            return _check_program(text)
        text = apply_edit(ctx.parent.source, reply) if op == "edit" else extract_fenced(reply, "python")
        return None, _check_source(text)
    except EditError as exc:
        raise Rejected(str(exc)) from None


def _check_program(text: str) -> tuple[str, str]:
    from primitives.program import Program

    try:
        program = Program.from_text(text)
    except Exception as exc:  # ProgramError, or anything a malformed text trips in the parser
        raise Rejected(f"program text does not parse: {_line(exc)}") from None
    return program.to_text(), _check_source(program.render())


def _check_source(source: str) -> str:
    from evaluator.policy import enforce

    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise Rejected(f"line {exc.lineno}: [syntax] {exc.msg}") from None
    try:
        enforce(source)
    except Exception as exc:  # PolicyError: "line N: [rule] message"
        raise Rejected(f"rejected by policy: {_line(exc)}") from None
    if not any(isinstance(node, ast.ClassDef) and node.name == "Submission" for node in tree.body):
        raise Rejected("the file defines no top-level class Submission")
    return source


def _line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def _outcome(exc: LLMError) -> str:
    if isinstance(exc, LLMTimeout):
        return "timeout"
    if isinstance(exc, LLMUnavailable):
        return "unavailable"
    return "budget" if type(exc).__name__ == "BudgetExhausted" else "error"


def _call_record(operator, system, user, completion, spec, outcome, error) -> dict:
    """One row for the run database's LLM-call table; `prompt` holds both messages."""
    return {
        "provider": spec.provider if spec else None,
        "model": spec.label if spec else None,
        "operator": operator,
        "prompt": f"[system]\n{system}\n\n[user]\n{user}",
        "reply": completion.text if completion else None,
        "tokens_in": completion.tokens_in if completion else 0,
        "tokens_out": completion.tokens_out if completion else 0,
        "cost_usd": completion.cost_usd if completion else 0.0,
        "latency_s": completion.latency_s if completion else 0.0,
        "outcome": outcome,  # ok | rejected | timeout | unavailable | error | budget
        "error": error,
    }


LLM_OPERATORS: dict[str, Callable[..., Proposal]] = {
    name: partial(propose, name) for name in ("llm_edit", "llm_rewrite", "llm_crossover")
}
