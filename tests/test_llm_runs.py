"""LLM runs that go wrong in the ways users hit: a killed run, a duplicate child, a slow model, bad
flags. The real CLI in a subprocess, the real SDKs, a scripted server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from population.db import RunDB

try:
    from tests.llm_servers import FakeLLMServer, Reply
    from tests.test_llm_evolve import (BASE, LLM_OPS, ROOT, Answers, cli, cli_env, evolve, load, output,
                                       program_text, submission_text)
except ImportError:  # tests/ not a package
    from llm_servers import FakeLLMServer, Reply
    from test_llm_evolve import (BASE, LLM_OPS, ROOT, Answers, cli, cli_env, evolve, load, output, program_text,
                                 submission_text)


@pytest.fixture
def server():
    with FakeLLMServer() as fake:
        yield fake


def wait_until(condition, what: str, limit_s: float = 240) -> None:
    """Poll a condition on the run (not a sleep standing in for one); fail if it never holds."""
    end = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < end, f"never happened: {what}"
        time.sleep(0.05)


def scored_children(run_dir: Path) -> int:
    if not (run_dir / "synth.db").exists():
        return 0
    with RunDB.open(run_dir) as db:
        return sum(1 for c in db.candidates() if c.generation > 0 and c.status == "scored")


def test_duplicate_child_is_sent_back_for_one_repair_round(tmp_path, server):
    answers = iter([0.004, 0.004])  # the first two replies propose the same child; later ones are new
    fresh = iter(range(1, 1000))

    def body_for(fence):
        lr = next(answers, None) or round(0.004 + 0.0013 * next(fresh), 6)
        return (program_text if fence == "program" else submission_text)(lr)

    server.replies = Answers(server, body_for=body_for)
    evolve(tmp_path, "--llm", f"openai:test-model@{server.url}/v1", "--llm-rate", "1", generations=2)
    cands, calls, _ = load(tmp_path)
    by_id = {c.id: c for c in cands}
    sent_back = [i for i, c in enumerate(calls) if c.outcome == "duplicate"]
    assert sent_back, [(c.outcome, c.error) for c in calls]
    first = calls[sent_back[0]]
    assert "identical to" in first.error or "computes exactly" in first.error
    repair = calls[sent_back[0] + 1]  # the round that asked for a real change, for the same child
    assert repair.child_id == first.child_id and "Why it failed" in repair.prompt and first.error in repair.prompt
    child = by_id[first.child_id]
    assert child.status == "scored" and child.duplicate_of is None and child.operator_params["repairs"] >= 1


def test_sigkill_mid_proposal_resume_replays_instead_of_paying_again(tmp_path, server):
    """The first reply is rejected (no edit in it) and the repair request hangs: SIGKILL then. The
    resumed run asks the same first question, gets the paid reply from the database, and only the
    repair goes to the server again. Every answered request is recorded exactly once."""
    answers = Answers(server, script=["I would rather not change anything.", Reply(hang=True)])
    server.replies = answers
    run_dir = tmp_path / "run"
    config = tmp_path / "run.toml"
    config.write_text('seeds = ["adamw", "sgd_momentum"]\n')
    args = [sys.executable, "-m", "cli", "evolve", *BASE, "--generations", "1", "--config", str(config),
            "--run-dir", str(run_dir), "--llm", f"openai:test-model@{server.url}/v1,timeout=300", "--llm-rate", "1"]
    proc = subprocess.Popen(args, cwd=ROOT, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert answers.hung.wait(240), "the repair request never came"
        with RunDB.open(run_dir) as db:
            assert [c.outcome for c in db.llm_calls()] == ["open:rejected"]  # recorded the moment it returned
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    first_prompt = server.requests[0].body["messages"][1]["content"]
    evolve(tmp_path, "--llm", f"openai:test-model@{server.url}/v1,timeout=300", "--llm-rate", "1")
    cands, calls, _ = load(tmp_path)
    assert answers.answered == len(calls)  # every answer paid for is recorded, none twice
    asked_first = [r for r in server.requests if r.body["messages"][1]["content"] == first_prompt]
    assert len(asked_first) == 1  # the resume replayed it
    assert not any(c.outcome.startswith(("open", "orphaned")) for c in calls)
    replayed = calls[0]
    assert replayed.outcome == "rejected" and replayed.child_id is not None
    assert {c.child_id for c in calls if c.outcome == "child"} >= {replayed.child_id}
    assert len([c for c in cands if c.generation == 1 and c.status != "invalid"]) == 4


def test_workers_keep_scoring_while_the_model_thinks(tmp_path, server):
    """The first LLM request is held until two genetic children were scored: with proposals on the
    scheduler's thread that could never happen, and the run would hang here."""
    release = threading.Event()
    answers = Answers(server)
    answers.script = [Reply(wait_for=release, body="")]  # held, then an empty body: a malformed reply
    server.replies = answers
    run_dir = tmp_path / "run"
    config = tmp_path / "run.toml"
    config.write_text('seeds = ["adamw", "sgd_momentum"]\n')
    args = [sys.executable, "-m", "cli", "evolve", *BASE, "--generations", "1", "--config", str(config),
            "--run-dir", str(run_dir), "--llm", f"openai:test-model@{server.url}/v1,timeout=300,retries=0",
            "--llm-rate", "1"]
    proc = subprocess.Popen(args, cwd=ROOT, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert answers.hung.wait(240), "no LLM request"
        wait_until(lambda: scored_children(run_dir) >= 2, "two genetic children scored while the model thinks")
        release.set()
        out, _ = proc.communicate(timeout=300)
    finally:
        release.set()
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, out
    _, calls, _ = load(tmp_path)
    assert calls and calls[0].outcome == "malformed" and calls[0].latency_s > 0  # the held reply was empty
    assert "Traceback" not in out


def test_show_lineage_and_llm_give_tokens_cost_and_the_models_rationale(tmp_path, server):
    server.replies = Answers(server)
    run_dir = str(tmp_path / "run")
    evolve(tmp_path, "--llm", f"openai:test-model@{server.url}/v1,price_in=2,price_out=8", "--llm-rate", "1",
           generations=2)
    _, calls, _ = load(tmp_path)
    made = [c for c in calls if c.outcome == "child"]
    assert made
    child = made[-1].child_id
    row = json.loads(cli("lineage", run_dir, str(child), "--json").stdout)[-1]
    assert row["llm"]["calls"] >= 1 and row["llm"]["tokens_in"] == 11 * row["llm"]["calls"]
    assert row["llm"]["cost_usd"] == pytest.approx(row["llm"]["calls"] * (11 * 2 + 7 * 8) / 1e6)
    assert row["idea"] == "fresh step size" and row["rationale"] == "A new learning rate for the same update."
    text = cli("lineage", run_dir, str(child)).stdout
    assert "fresh step size" in text and "A new learning rate" in text and "tok $" in text
    logged = json.loads(cli("llm", run_dir, "--json").stdout)
    assert [c["id"] for c in logged] == [c.id for c in calls]
    assert all(c["prompt"].startswith("[system]") for c in logged)
    mine = json.loads(cli("llm", run_dir, str(child), "--json").stdout)
    assert mine and all(c["child_id"] == child for c in mine)
    shown = cli("llm", run_dir, str(child)).stdout
    assert "prompt" in shown and "reply" in shown and "fresh step size" in shown
    assert cli("llm", run_dir, "99999", code=2).stderr.count("\n") == 1


def test_later_prompts_show_earlier_attempts_on_the_lineage_and_the_true_horizon(tmp_path, server):
    server.replies = Answers(server)
    evolve(tmp_path, "--llm", f"openai:test-model@{server.url}/v1", "--llm-rate", "1", generations=2)
    prompts = [r.text() for r in server.requests]
    assert all("trains each candidate for 50 steps" in p and "benchmark itself trains for 400" in p for p in prompts)
    assert all("step(self, closure=None)" in p and "Any pass beats every fail" in p for p in prompts)
    system = {r.body["messages"][0]["content"] for r in server.requests}
    assert len(system) <= 2  # one per level: the static part providers can cache
    assert any("Earlier attempts on this lineage" in p and "vs its parent" in p for p in prompts[1:])


@pytest.mark.parametrize("flags, message", [
    (["--llm", "openai:o3-pro", "--llm-budget", "1"], "--llm-price IN,OUT"),
    (["--llm", "openai:gpt-4.1-mini", "--llm-price", "1,two"], "IN,OUT"),
    (["--prompts", "no-such-dir"], "prompts directory no-such-dir does not exist"),
])
def test_bad_llm_flags_are_one_line_exit_2_and_store_nothing(tmp_path, flags, message):
    proc = cli("evolve", *BASE, "--run-dir", str(tmp_path / "run"), *flags, code=2)
    assert message in proc.stderr and proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()


def test_a_prompts_dir_with_an_unknown_placeholder_is_refused_at_start(tmp_path):
    folder = tmp_path / "prompts"
    folder.mkdir()
    (folder / "edit.txt").write_text("Improve $parent_text for $no_such_thing\n")
    proc = cli("evolve", *BASE, "--run-dir", str(tmp_path / "run"), "--prompts", str(folder), code=2)
    assert "$no_such_thing" in proc.stderr and "edit.txt" in proc.stderr
    assert not (tmp_path / "run").exists()
