"""LLM variation operators: ask a model for a child, check the reply, and repair it when it fails.

    propose("llm_edit", "program", ctx, ensemble, rng) -> Proposal

Named in the operator registry (synth/search/operators.py) beside the genetic ones. A reply is only
accepted after it applied / parsed / passed the policy check; otherwise the error goes back to the
model in a repair round (prompts/repair.txt), up to `max_repairs` times. Nothing unchecked is
returned with ok=True. Every call, good or bad, is in `Proposal.calls` for the run database.

`ProposalRun` is the same conversation as a small state machine -- `request()` the next messages,
feed back `on_reply` / `on_error` -- so the engine can run each model call on another thread and
do everything else (checks, the database, sending a duplicate back) on its own.
"""

from __future__ import annotations

import ast
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

from prompts.render import PromptContext, render
from synth.llm.base import Completion, LLMError
from synth.llm.edits import EditError, apply_edit, extract_fenced

Level = Literal["program", "code"]
RATIONALE_RE = {key: re.compile(rf"^\W*{key}\W*:\s*(.+?)\s*$", re.I | re.M) for key in ("name", "description")}


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
    name: Optional[str] = None  # the model's own short name for the idea (NAME: ...)
    description: Optional[str] = None  # and its stated rationale (DESCRIPTION: ...)
    calls: list[dict] = field(default_factory=list)  # see `call_record`

    @property
    def params(self) -> dict:
        """Operator params for the candidate record, like a genetic operator's."""
        params = {"level": self.kind, "model": self.model, "repairs": self.repairs, "calls": len(self.calls)}
        if self.name:
            params["name"] = self.name
        if self.description:
            params["description"] = self.description
        return params


class Rejected(Exception):
    """A reply that did not survive the checks; str() is one line for the repair prompt."""


class ProposalRun:
    """One proposal's conversation with the models: first request, then repair rounds."""

    def __init__(self, operator: str, level: Level, ctx: PromptContext, max_repairs: int = 2,
                 templates_dir: Path | str | None = None, title: str = ""):
        op = operator.removeprefix("llm_")
        if op not in ("edit", "rewrite", "crossover"):
            raise ValueError(f"unknown LLM operator {operator!r}: use one of llm_edit, llm_rewrite, llm_crossover")
        self.op, self.level, self.ctx = op, level, ctx
        self.max_repairs, self.templates_dir, self.title = max_repairs, templates_dir, title
        self.system, self.user = render(op, ctx, level, templates_dir)
        self.proposal = Proposal(ok=False, kind=level, operator=f"llm_{op}")
        self.done = False
        self.sent_back = False  # a duplicate child gets one repair round, never more

    def request(self) -> tuple[str, str] | None:
        """The messages of the next call, or None when the proposal is over."""
        return None if self.done else (self.system, self.user)

    def on_error(self, exc: LLMError, spec) -> None:
        """No usable reply (transport, budget, malformed, truncated): the proposal ends without a child."""
        proposal = self.proposal
        proposal.error = str(exc)
        proposal.model = spec.label if spec is not None else proposal.model
        outcome = getattr(exc, "outcome", "error")
        proposal.calls.append(call_record(proposal.operator, self.system, self.user, exc.completion, spec,
                                          outcome, str(exc), latency_s=exc.latency_s))
        self.done = True

    def on_reply(self, completion: Completion, spec) -> None:
        proposal = self.proposal
        proposal.model = spec.label
        try:
            genome, source = check_reply(self.op, self.level, self.ctx, completion.text, self.title)
        except Rejected as exc:
            proposal.error = str(exc)
            proposal.calls.append(call_record(proposal.operator, self.system, self.user, completion, spec,
                                              "rejected", str(exc)))
            self._repair(completion.text, str(exc))
            return
        proposal.calls.append(call_record(proposal.operator, self.system, self.user, completion, spec, "ok", None))
        proposal.name, proposal.description = rationale(completion.text)
        proposal.ok, proposal.genome, proposal.source, proposal.error = True, genome, source, None
        self.done = True

    def send_back(self, reason: str) -> bool:
        """An accepted child that is not new: one repair round asking for a real change (True if sent)."""
        if self.sent_back or not self.proposal.ok:
            return False
        self.sent_back = True
        attempt = self.proposal.calls[-1]["reply"] or ""
        self.proposal.calls[-1]["outcome"] = "duplicate"
        self.proposal.calls[-1]["error"] = reason
        self.proposal.ok, self.proposal.genome, self.proposal.source = False, None, None
        self.proposal.error = reason
        self.done = False
        self.proposal.repairs += 1
        self.user = render("repair", self.ctx, self.level, self.templates_dir, repair_of=self.op,
                           attempt=attempt, error=reason)[1]
        return True

    def _repair(self, attempt: str, error: str) -> None:
        if self.proposal.repairs >= self.max_repairs:
            self.done = True
            return
        self.proposal.repairs += 1
        self.user = render("repair", self.ctx, self.level, self.templates_dir, repair_of=self.op,
                           attempt=attempt, error=error)[1]


def propose(operator: str, level: Level, ctx: PromptContext, ensemble, rng: random.Random,
            max_repairs: int = 2, templates_dir: Path | str | None = None) -> Proposal:
    """Ask `ensemble` for one child of ctx.parent (and ctx.other, for crossover) at `level`, on this thread."""
    run = ProposalRun(operator, level, ctx, max_repairs, templates_dir)
    while (messages := run.request()) is not None:
        if ensemble.exhausted:
            run.proposal.error = ensemble.stop_reason
            break
        try:
            completion, spec = ensemble.complete(*messages, rng)
        except LLMError as exc:
            if type(exc).__name__ == "BudgetExhausted":
                run.proposal.error = str(exc)
                break
            run.on_error(exc, getattr(ensemble, "last_spec", None))
            continue
        run.on_reply(completion, spec)
    return run.proposal


def rationale(reply: str) -> tuple[str | None, str | None]:
    """The NAME: and DESCRIPTION: lines the prompts ask for, if the model gave them (before any code)."""
    head = reply.split("```", 1)[0].split("<<<<<<<", 1)[0]
    found = [RATIONALE_RE[key].search(head) for key in ("name", "description")]
    return tuple(m.group(1).strip("*_` ")[:200] if m else None for m in found)  # type: ignore[return-value]


def check_reply(op: str, level: Level, ctx: PromptContext, reply: str, title: str = "") -> tuple[str | None, str]:
    """(genome, source) for a reply that applies, parses and passes the policy; else Rejected."""
    try:
        if level == "program":
            text = apply_edit(ctx.parent.program, reply) if op == "edit" else extract_fenced(reply, "program")
            return _check_program(text, title)
        text = apply_edit(ctx.parent.source, reply) if op == "edit" else extract_fenced(reply, "python")
        return None, _check_source(fresh_docstring(text, title) if title else text)
    except EditError as exc:
        raise Rejected(str(exc)) from None


def fresh_docstring(source: str, title: str) -> str:
    """The child's own module docstring: an edited file must not keep an ancestor's description."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source  # the check that follows says what is wrong
    lines = source.splitlines(keepends=True)
    doc = f'"""{title}"""\n'
    first = tree.body[0] if tree.body else None
    if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)):
        return "".join(lines[: first.lineno - 1]) + doc + "".join(lines[first.end_lineno:])
    return doc + "\n" + source


def _check_program(text: str, title: str) -> tuple[str, str]:
    from primitives.program import Program

    try:
        program = Program.from_text(text)
    except Exception as exc:  # ProgramError, or anything a malformed text trips in the parser
        raise Rejected(f"program text does not parse: {_line(exc)}") from None
    return program.to_text(), _check_source(program.render(title=title) if title else program.render())


def _check_source(source: str) -> str:
    from evaluator.policy import enforce

    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise Rejected(_quote(source, f"line {exc.lineno}: [syntax] {exc.msg}")) from None
    try:
        enforce(source)
    except Exception as exc:  # PolicyError: "line N: [rule] message"
        raise Rejected(_quote(source, f"rejected by policy: {_line(exc)}")) from None
    if not any(isinstance(node, ast.ClassDef) and node.name == "Submission" for node in tree.body):
        raise Rejected("the file defines no top-level class Submission")
    return source


def _quote(source: str, error: str) -> str:
    """Line numbers count lines of a file the model may never have seen: quote the line itself."""
    match = re.search(r"\bline (\d+)", error)
    lines = source.splitlines()
    if match and 1 <= int(match.group(1)) <= len(lines):
        return f"{error} (the line: `{lines[int(match.group(1)) - 1].strip()[:120]}`)"
    return error


def _line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def call_record(operator, system, user, completion, spec, outcome, error, latency_s: float | None = None) -> dict:
    """One row for the run database's LLM-call table; `prompt` holds both messages."""
    return {
        "provider": spec.provider if spec else None,
        "model": spec.label if spec else None,
        "operator": operator,
        "system": system,
        "user": user,
        "prompt": f"[system]\n{system}\n\n[user]\n{user}",
        "reply": completion.text if completion else None,
        "tokens_in": completion.tokens_in if completion else 0,
        "tokens_out": completion.tokens_out if completion else 0,
        "cost_usd": completion.cost_usd if completion else 0.0,
        "latency_s": completion.latency_s if completion else (latency_s or 0.0),
        "cached": bool(completion and completion.cached),
        "outcome": outcome,  # ok | rejected | duplicate | timeout | unavailable | malformed | truncated | error
        "error": error,
    }

