"""Fill the prompt templates: `render(operator, ctx, level)` -> (system, user).

Templates are text files with `$placeholders` (string.Template). A `--prompts DIR` overrides any
template file it holds; the others come from this package. Every placeholder below is available
to every template; an unknown one is an error that names the file, not a silent blank.

    track description max_steps eval_every target            the task
    operator level level_noun fence level_guide answer_format  what is asked, and at which level
    parent_id parent_fitness parent_summary parent_curve parent_text   the parent
    other_id other_fitness other_summary other_curve other_text        the second parent (crossover)
    best diverse failures attempts                             search history (attempts: this lineage)
    fitness horizon                                            the fitness formula; the run's true horizon
    vocabulary seeds                                           the program language (program level)
    task attempt error                                         repair: the first request, the reply, why it failed

The static parts (the rules, the program language, its vocabulary and examples: $level_guide) sit
in the system prompt, which is the same for every call of a run at one level, so the providers'
prefix caches apply; everything about this call is in the user message.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from string import Template
from typing import Literal

from prompts.context import CandidateInfo, PromptContext, record_summary

__all__ = ["CandidateInfo", "PromptContext", "record_summary", "render", "OPERATORS", "TEMPLATES"]

Level = Literal["program", "code"]
OPERATORS = ("edit", "rewrite", "crossover", "repair")
TEMPLATES = ("system.txt", "edit.txt", "rewrite.txt", "crossover.txt", "repair.txt",
             "level_program.txt", "level_code.txt")
ANSWER_FORMAT = {
    "edit": ("one or more SEARCH/REPLACE blocks (<<<<<<< SEARCH / ======= / >>>>>>> REPLACE) against the "
             "parent {noun} exactly as shown in the request; each SEARCH must match exactly one place"),
    "rewrite": "the complete new {noun} in a single ```{fence} code block",
    "crossover": "the complete child {noun} in a single ```{fence} code block",
}
ATTEMPT_CAP = 4000  # characters of a failed reply shown in a repair prompt (head and tail)


def render(operator: str, ctx: PromptContext, level: Level, templates_dir: Path | str | None = None, *,
           repair_of: str = "edit", attempt: str = "", error: str = "") -> tuple[str, str]:
    """(system, user) for one LLM call. For "repair", `repair_of` names the operator whose request is
    repeated as $task, with the failed reply as $attempt and the reason as $error."""
    operator = operator.removeprefix("llm_")
    repair_of = repair_of.removeprefix("llm_")
    if operator not in OPERATORS or repair_of == "repair" or repair_of not in OPERATORS:
        raise ValueError(f"unknown prompt operator {operator!r}/{repair_of!r}: use one of {', '.join(OPERATORS)}")
    if level not in ("program", "code"):
        raise ValueError(f"unknown level {level!r}: use 'program' or 'code'")
    if level == "program" and ctx.parent.program is None:
        raise ValueError(f"candidate {ctx.parent.id} is code-only: it has no program text to edit at the program level")
    if "crossover" in (operator, repair_of) and ctx.other is None:
        raise ValueError("crossover needs a second parent (PromptContext.other)")
    if level == "program" and "crossover" in (operator, repair_of) and ctx.other.program is None:
        raise ValueError(f"candidate {ctx.other.id} is code-only: crossover at the program level needs two programs")
    folder = Path(templates_dir) if templates_dir is not None else None
    if folder is not None and not folder.is_dir():
        raise ValueError(f"prompts directory {folder} does not exist")
    values = _values(ctx, level, operator if operator != "repair" else repair_of, folder)
    if operator == "repair":
        values["task"] = _fill("%s.txt" % repair_of, values, folder)
        values["attempt"] = cap_text(attempt, ATTEMPT_CAP)
        values["error"] = error
    return _fill("system.txt", values, folder), _fill(f"{operator}.txt", values, folder)


def check_templates(folder: Path | str) -> None:
    """A `--prompts` directory, checked before a run starts: it exists, every .txt file in it is a known
    template, and each uses only known placeholders. ValueError with one line otherwise."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"prompts directory {folder} does not exist")
    known = set(_values(_SAMPLE, "code", "edit", None)) | {"level_guide"}
    for path in sorted(folder.glob("*.txt")):
        if path.name not in TEMPLATES:
            raise ValueError(f"{path}: not a template name (templates: {', '.join(TEMPLATES)})")
        try:
            template = Template(path.read_text())
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: cannot read ({exc})") from None
        if not template.is_valid():
            raise ValueError(f"{path}: a $ that starts no placeholder (write a literal $ as $$)")
        unknown = sorted(set(template.get_identifiers()) - known)
        if unknown:
            raise ValueError(f"template {path}: unknown placeholder ${unknown[0]} (known: {', '.join(sorted(known))})")


def _values(ctx: PromptContext, level: Level, asked: str, folder: Path | None) -> dict[str, str]:
    noun = "optimizer program" if level == "program" else "Submission file"
    fence = "program" if level == "program" else "python"
    values = {
        "track": ctx.track, "description": ctx.description or ctx.track, "max_steps": str(ctx.max_steps),
        "eval_every": str(ctx.eval_every), "target": ctx.target or "a higher fitness",
        "operator": asked, "level": level, "level_noun": noun, "fence": fence,
        "answer_format": ANSWER_FORMAT[asked].format(noun=noun, fence=fence),
        "best": _listing(ctx.best, level) or "(none yet)",
        "diverse": _listing(ctx.diverse, level) or "(none yet)",
        "failures": "\n".join(f"- {op}: {' '.join(err.split())[:300]}" for op, err in ctx.failures) or "(none)",
        "attempts": "\n".join(f"- {line}" for line in ctx.attempts) or "(none yet)",
        "fitness": ctx.fitness_formula or "higher is better",
        "horizon": _horizon(ctx),
        "vocabulary": "", "seeds": "", "task": "", "attempt": "", "error": "",
    }
    for prefix, cand in (("parent", ctx.parent), ("other", ctx.other)):
        values.update(_candidate_values(prefix, cand, level))
    if level == "program":
        values["vocabulary"] = ctx.vocabulary if ctx.vocabulary is not None else primitive_vocabulary()
        seeds = ctx.seeds if ctx.seeds is not None else seed_texts()
        values["seeds"] = "\n\n".join(f"{name}:\n```program\n{text.strip()}\n```" for name, text in seeds.items())
    values["level_guide"] = _fill(f"level_{level}.txt", values, folder)
    return values


def cap_text(text: str, limit: int) -> str:
    """At most about `limit` characters: the head and the tail, with what was cut said in between."""
    if len(text) <= limit:
        return text
    head, tail = text[: limit * 3 // 4], text[-(limit // 4):]
    return f"{head}\n[... {len(text) - len(head) - len(tail)} characters cut ...]\n{tail}"


def _horizon(ctx: PromptContext) -> str:
    if ctx.max_steps == ctx.benchmark_steps:
        return f"Each candidate trains for {ctx.max_steps} steps, the benchmark's own horizon."
    return (f"This search trains each candidate for {ctx.max_steps} steps to save time; the benchmark itself "
            f"trains for {ctx.benchmark_steps}, so prefer ideas that also hold over the longer run.")


def _candidate_values(prefix: str, cand: CandidateInfo | None, level: Level) -> dict[str, str]:
    if cand is None:
        return {f"{prefix}_{k}": "" for k in ("id", "fitness", "summary", "curve", "text")}
    return {
        f"{prefix}_id": cand.id,
        f"{prefix}_fitness": _fitness(cand.fitness),
        f"{prefix}_summary": cand.summary or "(no record)",
        f"{prefix}_curve": "\n".join(f"{step}: {metric:.6g}" for step, metric in cand.curve) or "(no curve)",
        f"{prefix}_text": (cand.program if level == "program" and cand.program is not None else cand.source).strip(),
    }


def _fitness(value: float | None) -> str:
    return "not scored" if value is None else f"{value:.4f}"


def _listing(cands: list[CandidateInfo], level: Level) -> str:
    """Candidates as short sections; at the program level their program text when they have one."""
    parts = []
    for cand in cands:
        text, fence = ((cand.program, "program") if level == "program" and cand.program is not None
                       else (cand.source, "python"))
        head = f"### candidate {cand.id} (fitness {_fitness(cand.fitness)})"
        summary = f"\n{cand.summary}" if cand.summary else ""
        parts.append(f"{head}{summary}\n```{fence}\n{text.strip()}\n```")
    return "\n\n".join(parts)


def _fill(name: str, values: dict[str, str], folder: Path | None) -> str:
    path = folder / name if folder is not None and (folder / name).is_file() else None
    text = path.read_text() if path else resources.files("prompts").joinpath(name).read_text()
    try:
        return Template(text).substitute(values)
    except KeyError as exc:
        raise ValueError(f"template {path or name}: unknown placeholder ${exc.args[0]} "
                         f"(known: {', '.join(sorted(values))})") from None
    except ValueError as exc:
        raise ValueError(f"template {path or name}: {exc} (write a literal $ as $$)") from None


_SAMPLE = PromptContext(track="sample", parent=CandidateInfo(id="0", source="", program=None))


@functools.lru_cache(maxsize=1)
def primitive_vocabulary() -> str:
    """One line per primitive of the DEAP primitive set: `name(arg types) -> type: what it does`."""
    from deap import gp

    import primitives.pset as module

    pset = next((v for v in vars(module).values() if isinstance(v, gp.PrimitiveSetTyped)), None)
    for name in ("get_pset", "build_pset", "make_pset", "pset"):
        if pset is None and callable(getattr(module, name, None)):
            pset = getattr(module, name)()
    if pset is None:
        raise RuntimeError("primitives.pset exposes no DEAP PrimitiveSetTyped")
    lines = []
    for ret, prims in pset.primitives.items():
        for prim in prims:
            doc = (getattr(pset.context.get(prim.name), "__doc__", None) or "").strip().splitlines()
            args = ", ".join(_type_name(t) for t in prim.args)
            lines.append(f"- {prim.name}({args}) -> {_type_name(ret)}" + (f": {doc[0]}" if doc else ""))
    lines.sort()
    inputs = [f"- {name} : {_type_name(type_)}" + (f" ({_input_role(name)})" if _input_role(name) else "")
              for name, type_ in zip(pset.arguments, pset.ins)]
    constants = sorted({_type_name(ret) for ret, terms in pset.terminals.items()
                        for term in terms if isinstance(term, gp.MetaEphemeral)})
    return "\n".join(lines + ["", "Inputs:"] + inputs + [
        "", f"Constants: plain numbers of type {', '.join(constants)} (written as in the examples)."])


def _type_name(type_: object) -> str:
    return getattr(type_, "__name__", str(type_))


def _input_role(name: str) -> str:
    roles = {"g": "the gradient", "p": "the parameter", "t": "the step count, 1, 2, ..."}
    if name in roles:
        return roles[name]
    return f"state slot {name[1:]}" if name[:1] == "s" and name[1:].isdigit() else ""


@functools.lru_cache(maxsize=1)
def seed_texts() -> dict[str, str]:
    from primitives.seeds import SEED_PROGRAMS

    return dict(SEED_PROGRAMS)
