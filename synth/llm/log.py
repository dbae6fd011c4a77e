"""`synth llm RUN [ID]`: what a run asked its models and what they answered, call by call.

Read straight from the run database's llm_calls table, so it works on a finished run, a killed one
(calls still `open:*` were paid for and are waiting for their candidate) or a running one.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from population.db import RunDB


def call_rows(db: RunDB, cand_id: int | None) -> list[dict]:
    """Every call of the run, or those that made candidate `cand_id`, oldest first."""
    calls = db.llm_calls(child_id=cand_id) if cand_id is not None else db.llm_calls()
    return [call.model_dump(mode="json") for call in calls]


def render_calls(console: Console, rows: list[dict], full: bool) -> None:
    table = Table(title=f"{len(rows)} LLM calls")
    for col in ("call", "operator", "model", "outcome", "child", "tokens in/out", "cost", "latency", "error"):
        table.add_column(col)
    for row in rows:
        table.add_row(str(row["id"]), row["operator"], row["model"], row["outcome"],
                      str(row["child_id"]) if row["child_id"] is not None else "-",
                      f"{row['tokens_in']}/{row['tokens_out']}", f"${row['cost_usd']:.4f}", f"{row['latency_s']:.1f} s",
                      escape((row["error"] or "")[:120]))
    console.print(table)
    if not full:
        return
    for row in rows:
        console.rule(f"call {row['id']}: {row['operator']} -> {row['outcome']}")
        console.print(Panel(escape(row["prompt"]), title="prompt", border_style="blue"))
        console.print(Panel(escape(row["reply"] or "(no reply)"), title="reply", border_style="green"))
