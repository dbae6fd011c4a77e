"""The run database's LLM calls: every request kept whole, what it cost, and replies a resume can replay.

A part of `population.db.RunDB` (it is mixed in), split out to keep each module to one job; it uses
RunDB's connection and transactions.
"""

from __future__ import annotations

from typing import Optional

from population.records import LLMCall
from population.schema import encode_column, decode_row

_LLM_COLUMNS = ("provider", "model", "operator", "parent_ids", "prompt", "reply", "tokens_in", "tokens_out",
                "cost_usd", "latency_s", "outcome", "child_id", "error", "created_at")


class LLMCallLog:
    def add_llm_call(self, call: LLMCall) -> int:
        """Records a call (even a failed one: it was paid for); sets and returns its id."""
        if call.id is not None:
            raise ValueError(f"LLM call already has id {call.id}; the database assigns ids")
        with self._write() as conn:
            call_id = conn.execute(
                f"INSERT INTO llm_calls ({', '.join(_LLM_COLUMNS)}) VALUES ({', '.join('?' * len(_LLM_COLUMNS))})",
                [encode_column(c, getattr(call, c)) for c in _LLM_COLUMNS]).lastrowid
        call.id = call_id
        return call_id

    def llm_calls(self, child_id: Optional[int] = None) -> list[LLMCall]:
        where, args = ("child_id = ?", [child_id]) if child_id is not None else ("1", [])
        return [LLMCall.model_validate(decode_row(r))
                for r in self._conn.execute(f"SELECT * FROM llm_calls WHERE {where} ORDER BY id", args)]

    def open_llm_reply(self, model: str, prompt: str, exclude: set[int] = frozenset()) -> Optional[LLMCall]:
        """The earliest reply to exactly this prompt from this model that no committed candidate used yet
        (outcome `open:ok` / `open:rejected`): a resume replays it instead of paying for it again."""
        rows = self._conn.execute("SELECT * FROM llm_calls WHERE model = ? AND prompt = ? AND outcome IN "
                                  "('open:ok', 'open:rejected') ORDER BY id", (model, prompt))
        for row in rows:
            if row["id"] not in exclude:
                return LLMCall.model_validate(decode_row(row))
        return None

    def close_open_llm_calls(self) -> int:
        """At the end of a run: calls still open made no candidate (their proposal died with a killed run
        and its prompt never came back); they stay recorded, paid for, as `orphaned`."""
        with self._write() as conn:
            return conn.execute("UPDATE llm_calls SET outcome = 'orphaned' WHERE outcome LIKE 'open:%'").rowcount

    def llm_costs(self) -> dict[int, dict]:
        """child id -> {"calls", "tokens_in", "tokens_out", "cost_usd"} of the calls that made it."""
        rows = self._conn.execute("SELECT child_id, count(*) AS calls, sum(tokens_in) AS tokens_in, sum(tokens_out) "
                                  "AS tokens_out, sum(cost_usd) AS cost_usd FROM llm_calls WHERE child_id IS NOT NULL "
                                  "GROUP BY child_id")
        return {r["child_id"]: {k: r[k] for k in ("calls", "tokens_in", "tokens_out", "cost_usd")} for r in rows}

    def llm_totals(self) -> dict:
        """{"calls", "tokens_in", "tokens_out", "cost_usd", "by_model": {model: the same four}}."""
        rows = self._conn.execute("SELECT model, count(*) AS calls, sum(tokens_in) AS tokens_in, sum(tokens_out) AS "
                                  "tokens_out, sum(cost_usd) AS cost_usd FROM llm_calls GROUP BY model ORDER BY model")
        by_model = {r["model"]: {k: r[k] for k in ("calls", "tokens_in", "tokens_out", "cost_usd")} for r in rows}
        totals = {k: sum(m[k] for m in by_model.values()) for k in ("calls", "tokens_in", "tokens_out")}
        totals["cost_usd"] = float(sum(m["cost_usd"] for m in by_model.values()))
        return {**totals, "by_model": by_model}
