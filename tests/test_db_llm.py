"""The LLM-call table as the engine uses it: written open as a call returns, settled with the
candidate it made in one transaction, replayed on resume, closed as orphaned at the end."""

from __future__ import annotations

import pytest

from population.db import RunDB
from population.records import Candidate, LLMCall


def call(prompt: str = "[system]\ns\n\n[user]\nu", outcome: str = "open:ok", reply: str = "r") -> LLMCall:
    return LLMCall(provider="openai", model="openai:m", operator="llm_edit", prompt=prompt, reply=reply,
                   tokens_in=10, tokens_out=5, cost_usd=0.01, latency_s=1.5, outcome=outcome)


def child(parents=(1,)) -> Candidate:
    return Candidate(generation=1, genome="g", source="# child\n", parents=list(parents), operator="llm_edit")


@pytest.fixture
def db(tmp_path):
    with RunDB.create(tmp_path / "run", {"track": "mqar"}) as db:
        db.add_candidates([Candidate(generation=0, genome="s", source="# seed\n", operator="seed")])
        yield db


def test_a_call_is_settled_with_its_candidate_or_not_at_all(db):
    cid = db.add_llm_call(call())
    bad = child(parents=(99,))
    with pytest.raises(ValueError, match="parent 99"):
        db.checkpoint([bad], {"children": 1}, calls=[(cid, bad, "child", None)])
    assert db.llm_calls()[0].outcome == "open:ok" and db.llm_calls()[0].child_id is None  # rolled back together
    good = child()
    db.checkpoint([good], {"children": 1}, calls=[(cid, good, "child", None)])
    assert (db.llm_calls()[0].outcome, db.llm_calls()[0].child_id) == ("child", good.id)
    assert db.llm_costs() == {good.id: {"calls": 1, "tokens_in": 10, "tokens_out": 5, "cost_usd": 0.01}}


def test_only_open_replies_are_replayed_and_leftovers_are_orphaned(db):
    settled = db.add_llm_call(call(outcome="child"))
    failed = db.add_llm_call(call(outcome="open:timeout", reply=""))
    open_ = db.add_llm_call(call(outcome="open:rejected"))
    assert db.open_llm_reply("openai:m", "[system]\ns\n\n[user]\nu").id == open_
    assert db.open_llm_reply("openai:m", "[system]\ns\n\n[user]\nu", exclude={open_}) is None
    assert db.open_llm_reply("openai:other", "[system]\ns\n\n[user]\nu") is None
    assert db.close_open_llm_calls() == 2
    assert [c.outcome for c in db.llm_calls()] == ["child", "orphaned", "orphaned"]
    assert settled and failed and db.llm_totals()["calls"] == 3  # every call paid for still counts
