"""`synth evolve --llm ...` end to end: the real CLI in a subprocess, the real openai / anthropic SDKs,
and a local scripted server (tests/llm_servers.py) that answers whatever the engine asks.

The server reads each request's prompt: an edit request gets a SEARCH/REPLACE block against the
parent shown in the prompt, a rewrite or crossover a whole program / Submission file in the fence
the prompt asks for (repair rounds ask the same way). Every answer is new (a fresh learning rate),
so children are scored rather than deduplicated. Runs are kept tiny: two seeds, 50 steps, no
cascade, no finalists, one worker.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from population.db import RunDB

try:
    from tests.llm_servers import FakeLLMServer, Reply, anthropic_reply, openai_reply
except ImportError:  # tests/ not a package
    from llm_servers import FakeLLMServer, Reply, anthropic_reply, openai_reply

ROOT = Path(__file__).resolve().parents[1]
LLM_OPS = {"llm_edit", "llm_rewrite", "llm_crossover"}
SECRET = "sk-test-secret-xyz"
BASE = ["--track", "mqar", "--population", "4", "--steps", "50", "--proxy-steps", "0", "--finalists", "0",
        "--quiet", "--workers", "1"]
RATIONALE = "NAME: fresh step size\nDESCRIPTION: A new learning rate for the same update.\n"
PARENT_RE = re.compile(r"## (?:Parent|Parent A|Starting point): candidate \S+ .*?\n```(\w+)\n(.*?)\n```", re.S)


# ---------------------------------------------------------------------------- the answering server
def program_text(lr: float) -> str:
    return ("s0 = ema(s0, g, 0.9)\ns1 = ema_sq(s1, g, 0.99)\ns2 = s2\n"
            f"update = scale(div(debias(s0, 0.9, t), add_eps(sqrt(debias(s1, 0.99, t)), 1e-08)), -{lr})")


def submission_text(lr: float) -> str:
    return ("import torch\n\nclass Submission(torch.optim.AdamW):\n    def __init__(self, params):\n"
            f"        super().__init__(params, lr={lr}, betas=(0.9, 0.99), weight_decay=0)\n")


def evil_text(marker: Path) -> str:
    return ("import os\nimport torch\n\nclass Submission(torch.optim.AdamW):\n    def __init__(self, params):\n"
            f"        os.system('touch {marker}')\n        super().__init__(params, lr=0.01)\n")


def answer(prompt: str, body_for) -> str:
    """A reply in the format the prompt asks for; `body_for(fence)` gives the new program / file."""
    task = prompt.rsplit("## Your task", 1)[-1]  # the request's last section (a repair's too)
    if "SEARCH/REPLACE" in task:
        fence, parent = PARENT_RE.search(prompt).groups()
        return f"{RATIONALE}<<<<<<< SEARCH\n{parent}\n=======\n{body_for(fence)}\n>>>>>>> REPLACE\n"
    fence = "program" if "```program" in task else "python"
    return f"{RATIONALE}```{fence}\n{body_for(fence)}\n```\n"


class Answers:
    """Stands in for FakeLLMServer.replies: the handler records the request, then takes a reply here."""

    def __init__(self, server: FakeLLMServer, body_for=None, hang: bool = False, tokens: tuple[int, int] | None = None,
                 script: list | None = None):
        self.server, self.hang, self.tokens = server, hang, tokens
        self.script = list(script or [])  # Replies (or "garbage") for the first requests, then real answers
        self.answered = 0  # requests answered with a reply (a hang is not an answer)
        self.hung = threading.Event()
        counter = itertools.count()
        self.body_for = body_for or (lambda fence: (program_text if fence == "program" else submission_text)(
            round(0.004 + 0.0013 * next(counter), 6)))
        self.lock = threading.Lock()

    def get_nowait(self) -> Reply:
        if self.hang:
            self.hung.set()
            return Reply(hang=True)
        with self.lock:
            request = self.server.requests[-1]
            if self.script:
                step = self.script.pop(0)
                if isinstance(step, Reply):
                    self.hung.set()
                    return step
                text = step
            else:
                prompt = "\n".join(m["content"] for m in request.body["messages"] if m["role"] == "user")
                text = answer(prompt, self.body_for)
            self.answered += 1
        usage = dict(zip(("tokens_in", "tokens_out"), self.tokens)) if self.tokens else {}
        return (anthropic_reply if request.path.endswith("/messages") else openai_reply)(text, **usage)


@pytest.fixture
def server():
    with FakeLLMServer() as fake:
        yield fake


# ---------------------------------------------------------------------------- helpers
def evolve(tmp_path: Path, *args: str, env: dict | None = None, seeds=("adamw", "sgd_momentum"),
           extra_config: str = "", generations: int = 1) -> subprocess.CompletedProcess:
    config = tmp_path / "run.toml"
    config.write_text(f"seeds = {json.dumps(list(seeds))}\n{extra_config}")
    return cli("evolve", *BASE, "--generations", str(generations), "--config", str(config),
               "--run-dir", str(tmp_path / "run"), *args, env=env)


def cli_env(env: dict | None = None) -> dict:
    base = {k: v for k, v in os.environ.items()
            if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY") and "proxy" not in k.lower()}
    base.update({"COLUMNS": "500", "PYTHONUNBUFFERED": "1"}, **(env or {}))
    return base


def cli(*args: str, env: dict | None = None, code: int = 0) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, env=cli_env(env), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == code, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


def output(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout + proc.stderr


def lines_with(proc: subprocess.CompletedProcess, text: str) -> list[str]:
    return [line for line in output(proc).splitlines() if text in line]


def load(tmp_path: Path):
    with RunDB.open(tmp_path / "run") as db:
        return db.candidates(), db.llm_calls(), db.evaluations()


# ---------------------------------------------------------------------------- the scenarios
def test_openai_children_scored_recorded_and_key_never_stored(tmp_path, server):
    server.replies = Answers(server)
    label = f"openai:test-model@{server.url}/v1"
    proc = evolve(tmp_path, "--llm", label, "--llm-rate", "1", generations=2, env={"OPENAI_API_KEY": SECRET})
    cands, calls, evals = load(tmp_path)
    by_id = {c.id: c for c in cands}

    llm_children = [c for c in cands if c.operator in LLM_OPS]
    scored = [c for c in llm_children if c.status == "scored"]
    assert len(scored) >= 4, [(c.operator, c.status, c.operator_params) for c in llm_children]
    assert {c.generation for c in scored} == {1, 2}
    for cand in scored:
        assert cand.model == label and cand.parents and all(p in by_id for p in cand.parents)
        assert cand.fitness is not None and any(e.candidate_id == cand.id for e in evals)
        assert len(cand.parents) == (2 if cand.operator == "llm_crossover" else 1)

    assert calls and len(calls) == len(server.requests)
    for call in calls:
        assert call.provider == "openai" and call.model == label and call.operator in LLM_OPS
        assert call.prompt.startswith("[system]") and "[user]" in call.prompt and call.reply
        assert (call.tokens_in, call.tokens_out) == (11, 7) and call.cost_usd == 0.0 and call.latency_s > 0
        assert call.outcome == "child" and call.child_id in by_id
        child = by_id[call.child_id]
        assert child.operator == call.operator and child.parents == call.parent_ids
    assert {c.id for c in scored} <= {call.child_id for call in calls}

    child = scored[-1]
    chain = json.loads(cli("lineage", str(tmp_path / "run"), str(child.id), "--json").stdout)
    assert chain[-1]["id"] == child.id and chain[-1]["operator"] == child.operator
    assert chain[-1]["model"] == label and chain[-1]["parents"] == child.parents
    assert chain[0]["operator"] == "seed"

    board = json.loads(cli("show", str(tmp_path / "run"), "--json").stdout)
    assert board["llm"]["calls"] == len(calls)
    assert board["llm"]["tokens_in"] == 11 * len(calls) and board["llm"]["tokens_out"] == 7 * len(calls)
    assert board["llm"]["cost_usd"] == 0.0 and label in board["llm"]["by_model"]
    ops = {row["operator"]: row for row in board["operators"]}
    assert LLM_OPS & set(ops) and sum(ops[o]["scored"] for o in LLM_OPS & set(ops)) == len(scored)

    # the key went to the server, and nowhere else
    assert all(r.headers.get("authorization") == f"Bearer {SECRET}" for r in server.requests)
    assert SECRET not in output(proc)
    for path in (tmp_path / "run").iterdir():
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert not any(SECRET in (c.prompt + c.reply + (c.error or "")) for c in calls)
    assert "unpriced" in output(proc) or "no price known" in output(proc)


def test_policy_violation_rejected_never_run(tmp_path, server):
    marker = tmp_path / "ran-os-system"
    server.replies = Answers(server, body_for=lambda fence: evil_text(marker))
    proc = evolve(tmp_path, "--llm", f"openai:test-model@{server.url}/v1", "--llm-rate", "1",
                  extra_config='llm_level = "code"\nmax_proposal_tries = 2\n')
    cands, calls, evals = load(tmp_path)
    llm_children = [c for c in cands if c.operator in LLM_OPS]
    assert llm_children and all(c.status == "invalid" for c in llm_children)
    for cand in llm_children:
        assert "rejected by policy" in cand.operator_params["error"] and "import" in cand.operator_params["error"]
        assert not any(e.candidate_id == cand.id for e in evals)
    assert calls and all(c.outcome == "rejected" and "rejected by policy" in c.error for c in calls)
    assert {c.child_id for c in calls} <= {c.id for c in llm_children}
    assert len(calls) == 3 * len(llm_children)  # the first request and two repair rounds each
    assert "Why it failed" in calls[1].prompt and "import of `os`" in calls[1].prompt
    assert "(the line: `import os`)" in calls[1].prompt  # the rendered file's line numbers, quoted
    assert not marker.exists()
    assert "Traceback" not in output(proc)


def test_hung_server_cools_down_falls_back_to_genetic_and_says_so_once(tmp_path, server):
    server.replies = Answers(server, hang=True)
    label = f"openai:test-model@{server.url}/v1"
    # three generations: enough proposals after the first call's 1 s timeout for a second call on any
    # machine (one generation can finish before it on a fast one), and far less than the 60 s cool-down
    proc = evolve(tmp_path, "--llm", f"{label},timeout=1,retries=3", "--llm-rate", "1", generations=3)
    cands, calls, _ = load(tmp_path)
    children = [c for c in cands if c.generation >= 1 and c.status != "invalid"]
    assert len(children) == 12 and not any(c.operator in LLM_OPS for c in children)
    assert any(c.status == "scored" for c in children)
    # two calls (one request each: the deadline covers the retries), then the model cools down
    assert len(server.requests) == 2 and len(calls) == 2
    assert all(c.outcome == "timeout" and c.child_id is None and c.reply == "" for c in calls)
    assert all(c.latency_s > 0.5 for c in calls)  # the time the failed call really took, not 0
    cooling = lines_with(proc, "cools down")
    assert len(cooling) == 1 and "no reply within 1 s" in cooling[0] and "2 failed calls in a row" in cooling[0]
    assert "Traceback" not in output(proc)


def test_token_budget_holds_across_a_resume(tmp_path, server):
    """Each call reports 1600 tokens; the worst case of the next call is its prompt plus max_tokens=100.
    The budget is one per run: a resumed run starts from what the database says was spent."""
    server.replies = Answers(server, tokens=(1500, 100))
    llm = ["--llm", f"openai:test-model@{server.url}/v1,max_tokens=100", "--llm-rate", "1",
           "--llm-budget-tokens", "6000"]
    first = evolve(tmp_path, *llm, generations=2)
    served = len(server.requests)
    assert served >= 1 and len(lines_with(first, "token budget spent")) == 1
    second = evolve(tmp_path, *llm, generations=3)
    _, calls, _ = load(tmp_path)
    spent = sum(c.tokens_in + c.tokens_out for c in calls)
    assert len(calls) == len(server.requests) == served  # the resumed run had nothing left to spend
    assert spent <= 6000 and spent == 1600 * served
    stopped = lines_with(second, "LLM edits stopped")
    assert len(stopped) == 1 and f"{spent} of 6000 used" in stopped[0]


def test_missing_key_says_so_once_and_runs_genetic(tmp_path):
    proc = evolve(tmp_path, "--llm", "openai:gpt-4.1-mini", "--llm-rate", "1")
    cands, calls, _ = load(tmp_path)
    assert calls == [] and not any(c.operator in LLM_OPS for c in cands)
    assert any(c.generation == 1 and c.status == "scored" for c in cands)
    said = lines_with(proc, "OPENAI_API_KEY")
    assert len(said) == 1 and "no API key" in said[0] and "openai:gpt-4.1-mini" in said[0]
    assert "genetic operators" in said[0] and len(lines_with(proc, "LLM")) == 1


def test_no_llm_says_how_to_turn_it_on(tmp_path):
    proc = evolve(tmp_path, seeds=("adamw",), generations=0)
    text = " ".join(output(proc).split())
    assert text.count("LLM edits are off") == 1
    assert "--llm openai:MODEL" in text and "OPENAI_API_KEY" in text and "--llm-rate" in text


def test_anthropic_children_scored(tmp_path, server):
    server.replies = Answers(server)
    label = f"anthropic:claude-test@{server.url}"
    evolve(tmp_path, "--llm", label, "--llm-rate", "1", env={"ANTHROPIC_API_KEY": "test-key"})
    cands, calls, _ = load(tmp_path)
    scored = [c for c in cands if c.operator in LLM_OPS and c.status == "scored"]
    assert scored and all(c.model == label for c in scored)
    assert server.requests and all(r.path == "/v1/messages" for r in server.requests)
    assert all("test-key" in " ".join(r.headers.values()) for r in server.requests)  # x-api-key or bearer
    assert calls and all(c.provider == "anthropic" and (c.tokens_in, c.tokens_out) == (13, 5) for c in calls)
    assert {c.id for c in scored} <= {c.child_id for c in calls if c.outcome == "child"}
