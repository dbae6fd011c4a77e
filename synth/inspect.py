"""Reading a run: the leaderboard, a candidate's ancestry, the code change along each edge."""

from __future__ import annotations

import difflib
import json
import math
import statistics

from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

from evaluator.record import EvalResult
from population.db import RunDB
from population.records import Candidate
from synth.config import AUDIT_EVERY
from synth.fitness import describe


def strict_json(data) -> str:
    """JSON that scripts can parse: NaN (a metric that does not apply) becomes null."""
    def finite(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: finite(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [finite(v) for v in value]
        return value

    return json.dumps(finite(data), indent=2, default=str, allow_nan=False)


def resolve_candidate(db: RunDB, candidate: int | None) -> int:
    if candidate is None:
        top = [c for c in db.top(50) if c.status == "scored"]
        if not top:
            raise ValueError("this run has no scored candidate yet")
        return top[0].id
    if db.get_candidate(candidate) is None:
        raise ValueError(f"no candidate {candidate} in this run")
    return candidate


def full_steps(config: dict) -> int:
    from evaluator.tracks import get_track

    return config.get("steps") or get_track(config["track"]).max_steps


def search_result(db: RunDB, cand: Candidate) -> EvalResult | None:
    """The candidate's full-budget score on the run's track and seeds (a duplicate shares its twin's)."""
    config = db.config()
    for ev in db.evaluations(candidate_id=cand.duplicate_of or cand.id, track=config["track"], seed_set="benchmark"):
        if ev.steps == full_steps(config):
            return EvalResult.model_validate(ev.result)
    return None


def cascade_stats(db: RunDB) -> dict | None:
    """What the fidelity cascade saved, and how many good children its gate wrongly stopped.

    Every child's run is gated at the proxy step; a child below the threshold stops there
    (`screened`), one above it goes the distance in the same run. Every AUDIT_EVERY-th child runs
    in full whatever its gate says: that sample is the check. A child counts as good when its full
    score reaches `full_bar`, the same quantile of its population's full scores that the gate asks
    of the metric at the proxy step; a good child below the gate's threshold was wrongly dropped.
    """
    config = db.config()
    if not config.get("proxy_steps"):
        return None
    full, proxy = full_steps(config), config["proxy_steps"]
    cands = db.candidates()
    gated = [c for c in cands if c.generation > 0 and c.timings.get("proxy", {}).get("metric") is not None]
    below = [c for c in gated if not c.timings["proxy"]["promoted"]]
    sample = [c for c in gated if c.timings["proxy"]["audit"]]  # run in full whatever the gate said
    good = [c for c in sample if c.fitness is not None and c.timings["proxy"].get("full_bar") is not None
            and c.fitness >= c.timings["proxy"]["full_bar"]]
    wrongly = [c.id for c in good if not c.timings["proxy"]["promoted"]]
    screened = [c for c in gated if c.status == "screened"]
    spent = len(screened) * proxy + (len(gated) - len(screened)) * full
    return {"proxy_steps": proxy, "proxied": len(gated), "promoted": len(gated) - len(below),
            "screened": len(screened), "audit_sample": len(sample), "audit_good": len(good),
            "audited": sum(1 for c in sample if not c.timings["proxy"]["promoted"]),
            "wrongly_dropped": len(wrongly), "wrongly_dropped_ids": wrongly,
            "good_drop_rate": len(wrongly) / len(good) if good else None,
            "training_steps_saved": 1 - spent / (len(gated) * full) if gated else 0.0}


def heldout_summary(db: RunDB, cand_id: int) -> dict | None:
    """Mean and std of the track metric over held-out seed sets, when they were scored."""
    track = db.config()["track"]
    values = []
    for ev in db.evaluations(candidate_id=cand_id, track=track):
        if ev.seed_set.startswith("heldout-") and ev.outcome == "ok":
            values.append(EvalResult.model_validate(ev.result).final_metric())
    if not values:
        return None
    return {"k": len(values), "mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def candidate_row(db: RunDB, cand: Candidate) -> dict:
    result = search_result(db, cand)
    return {
        "id": cand.id, "generation": cand.generation, "operator": cand.operator, "model": cand.model,
        "parents": cand.parents, "status": cand.status, "fitness": cand.fitness,
        "verdict": describe(result) if result else cand.status,
        "benchmark": result.benchmark_record() if result else None,
        "heldout": heldout_summary(db, cand.id),
        "genome": cand.genome,
        "llm": llm_cost(db, cand.id),
        "idea": cand.operator_params.get("name"),
        "rationale": cand.operator_params.get("description"),
    }


def llm_cost(db: RunDB, cand_id: int) -> dict | None:
    """The LLM calls that made this candidate (repair rounds included): count, tokens, dollars."""
    calls = db.llm_calls(child_id=cand_id)
    if not calls:
        return None
    return {"calls": len(calls), "tokens_in": sum(c.tokens_in for c in calls),
            "tokens_out": sum(c.tokens_out for c in calls), "cost_usd": sum(c.cost_usd for c in calls)}


def llm_cell(row: dict) -> str:
    cost = row.get("llm")
    return f"{cost['tokens_in'] + cost['tokens_out']} tok ${cost['cost_usd']:.4f}" if cost else "-"


def leaderboard(db: RunDB, k: int) -> dict:
    top = [c for c in db.top(k * 4 + 10) if c.status == "scored"][:k]
    return {
        "track": db.config()["track"],
        "top": [candidate_row(db, c) for c in top],
        "operators": db.operator_stats(),
        "llm": db.llm_totals(),
        "counts": {s: db.count(s) for s in ("scored", "failed", "duplicate", "invalid", "screened", "pending")},
        "cascade": cascade_stats(db),
    }


def render_leaderboard(console: Console, board: dict) -> None:
    table = Table(title=f"leaderboard{' - ' + board['track'] if board.get('track') else ''}")
    with_llm = any(row.get("llm") for row in board["top"])
    for col in ("rank", "id", "gen", "operator", "fitness", "verdict", "held-out mean ± std") + (("LLM",) * with_llm):
        table.add_column(col)
    for rank, row in enumerate(board["top"], 1):
        held = row["heldout"]
        held_text = f"{held['mean']:.4g} ± {held['std']:.2g} (k={held['k']})" if held else "-"
        op = row["operator"] + (f" ({row['model']})" if row["model"] else "")
        table.add_row(str(rank), str(row["id"]), str(row["generation"]), op,
                      f"{row['fitness']:.4f}" if row["fitness"] is not None else "-", row["verdict"], held_text,
                      *((llm_cell(row),) * with_llm))
    console.print(table)
    if board.get("counts"):
        console.print("  ".join(f"{k}: {v}" for k, v in board["counts"].items()), highlight=False)
    ops = Table(title="operators")
    for col in ("operator", "children", "scored", "failed", "duplicates", "improved", "mean Δ fitness"):
        ops.add_column(col)
    for row in board["operators"]:
        mean = row.get("mean_delta")
        ops.add_row(row["operator"], *(str(row.get(k, 0)) for k in ("children", "scored", "failed", "duplicates", "improved")),
                    f"{mean:+.4f}" if isinstance(mean, (int, float)) else "-")
    console.print(ops)
    cascade = board.get("cascade")
    if cascade:
        console.print(f"cascade: {cascade['proxied']} children gated at step {cascade['proxy_steps']}, "
                      f"{cascade['promoted']} promoted, {cascade['screened']} stopped there, "
                      f"{cascade['training_steps_saved']:.0%} of training steps saved; audit (every "
                      f"{AUDIT_EVERY}th child runs in full): of {cascade['audit_sample']}, {cascade['audit_good']} "
                      f"were good (their full score reached the bar the gate stands for) and the gate would have "
                      f"stopped {cascade['wrongly_dropped']} of those", highlight=False)
    llm = board.get("llm") or {}
    if llm.get("calls"):
        console.print(f"LLM: {llm['calls']} calls, {llm.get('tokens_in', 0)} tokens in, "
                      f"{llm.get('tokens_out', 0)} out, ${llm.get('cost_usd', 0):.4f}", highlight=False)


def ancestry(db: RunDB, cand_id: int) -> list[dict]:
    """The first-parent chain from the seed down to the candidate, each step with its score."""
    chain = list(reversed(db.lineage(cand_id)))
    rows, previous = [], None
    for cand in chain:
        row = candidate_row(db, cand)
        row["diff"] = edge_diff(previous, cand) if previous else ""
        row["code"] = cand.genome or cand.source
        rows.append(row)
        previous = cand
    return rows


def edge_diff(parent: Candidate, child: Candidate) -> str:
    """What the operator changed: program text when both have it, else the Python file."""
    if parent.genome and child.genome:
        before, after, name = parent.genome, child.genome, "program"
    else:
        before, after, name = parent.source, child.source, "submission.py"
    def lines(text: str) -> list[str]:  # every line ends in a newline, or the last two would glue together
        return (text if text.endswith("\n") else text + "\n").splitlines(True)

    return "".join(difflib.unified_diff(lines(before), lines(after), f"#{parent.id}/{name}", f"#{child.id}/{name}"))


def render_ancestry(console: Console, chain: list[dict], with_diff: bool) -> None:
    table = Table(title=f"lineage of #{chain[-1]['id']}" if chain else "lineage")
    with_llm = any(row.get("llm") for row in chain)
    for col in ("id", "gen", "operator", "parents", "fitness", "verdict") + (("LLM", "idea") * with_llm):
        table.add_column(col)
    for row in chain:
        op = row["operator"] + (f" ({row['model']})" if row["model"] else "")
        table.add_row(str(row["id"]), str(row["generation"]), op, ",".join(map(str, row["parents"])) or "-",
                      f"{row['fitness']:.4f}" if row["fitness"] is not None else "-", row["verdict"],
                      *((llm_cell(row), row.get("idea") or "-") * with_llm))
    console.print(table)
    for row in chain:
        if row.get("rationale"):
            console.print(f"#{row['id']} {row.get('idea') or ''}: {row['rationale']}", highlight=False)
    if with_diff:
        for row in chain[1:]:
            console.rule(f"#{row['parents'][0]} -> #{row['id']}  {row['operator']}  {row['verdict']}")
            console.print(Syntax(row["diff"] or "(no textual change)", "diff", theme="ansi_dark"))


def ancestry_dot(db: RunDB, cand_id: int) -> str:
    """Every ancestor through every parent, as a Graphviz digraph (operator on each edge)."""
    nodes = db.ancestors(cand_id)
    nodes[cand_id] = db.get_candidate(cand_id)
    lines = ["digraph lineage {", "  rankdir=TB;", '  node [shape=box, fontname="monospace"];']
    for cid in sorted(nodes):
        cand = nodes[cid]
        result = search_result(db, cand)
        label = f"#{cid} gen {cand.generation}\\n{describe(result) if result else cand.status}"
        style = ', style=filled, fillcolor="#c8f7c5"' if cid == cand_id else ""
        lines.append(f'  n{cid} [label="{label}"{style}];')
    for cid in sorted(nodes):
        cand = nodes[cid]
        op = cand.operator + (f" ({cand.model})" if cand.model else "")
        for parent in cand.parents:
            if parent in nodes:
                lines.append(f'  n{parent} -> n{cid} [label="{op}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"
