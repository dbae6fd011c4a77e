"""The run in the terminal: rich tables of the leaderboard and a candidate's ancestry."""

from __future__ import annotations

from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

from synth.config import AUDIT_EVERY


def llm_cell(row: dict) -> str:
    cost = row.get("llm")
    return f"{cost['tokens_in'] + cost['tokens_out']} tok ${cost['cost_usd']:.4f}" if cost else "-"


def verdict_columns(rows: list[dict]) -> list[str]:
    """A multi-track run gets a verdict column per track; a one-track run the one `verdict`."""
    tracks = next((row["tracks"] for row in rows if row.get("tracks")), None)
    return list(tracks) if tracks else ["verdict"]


def verdict_cells(row: dict, columns: list[str]) -> list[str]:
    return [row["verdict"]] if columns == ["verdict"] else [(row.get("tracks") or {}).get(t, "-") for t in columns]


def render_leaderboard(console: Console, board: dict) -> None:
    table = Table(title=f"leaderboard{' - ' + board['track'] if board.get('track') else ''}")
    with_llm = any(row.get("llm") for row in board["top"])
    verdicts = verdict_columns(board["top"])
    for col in ("rank", "id", "gen", "operator", "fitness", *verdicts, "held-out mean ± std") + (("LLM",) * with_llm):
        table.add_column(col)
    for rank, row in enumerate(board["top"], 1):
        held = row["heldout"]
        held_text = f"{held['mean']:.4g} ± {held['std']:.2g} (k={held['k']})" if held else "-"
        op = row["operator"] + (f" ({row['model']})" if row["model"] else "")
        table.add_row(str(rank), str(row["id"]), str(row["generation"]), op,
                      f"{row['fitness']:.4f}" if row["fitness"] is not None else "-", *verdict_cells(row, verdicts),
                      held_text,
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


def render_ancestry(console: Console, chain: list[dict], with_diff: bool) -> None:
    table = Table(title=f"lineage of #{chain[-1]['id']}" if chain else "lineage")
    with_llm = any(row.get("llm") for row in chain)
    verdicts = verdict_columns(chain)
    for col in ("id", "gen", "operator", "parents", "fitness", *verdicts) + (("LLM", "idea") * with_llm):
        table.add_column(col)
    for row in chain:
        op = row["operator"] + (f" ({row['model']})" if row["model"] else "")
        table.add_row(str(row["id"]), str(row["generation"]), op, ",".join(map(str, row["parents"])) or "-",
                      f"{row['fitness']:.4f}" if row["fitness"] is not None else "-", *verdict_cells(row, verdicts),
                      *((llm_cell(row), row.get("idea") or "-") * with_llm))
    console.print(table)
    for row in chain:
        if row.get("rationale"):
            console.print(f"#{row['id']} {row.get('idea') or ''}: {row['rationale']}", highlight=False)
    if with_diff:
        for row in chain[1:]:
            console.rule(f"#{row['parents'][0]} -> #{row['id']}  {row['operator']}  {row['verdict']}")
            console.print(Syntax(row["diff"] or "(no textual change)", "diff", theme="ansi_dark"))
