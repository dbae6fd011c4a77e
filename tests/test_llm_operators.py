"""LLM operators end to end: real SDK -> scripted local server -> reply checks -> repair rounds.

Runs against the real `primitives.program` and `evaluator.policy`: what passes here is what the
engine will accept.
"""

from __future__ import annotations

import random

import pytest

from prompts.render import CandidateInfo, PromptContext
from synth.llm.base import Completion, LLMUnavailable
from synth.llm.ensemble import LLMEnsemble
from synth.llm.spec import LLMSpec
from synth.llm.operators import Proposal, propose

try:
    from tests.llm_servers import FakeLLMServer, openai_reply
except ImportError:  # tests/ not a package
    from llm_servers import FakeLLMServer, openai_reply

Program = pytest.importorskip("primitives.program").Program
pytest.importorskip("evaluator.policy")

SECRET = "sk-test-OPERATOR-SECRET-987654321"
PARENT_PROGRAM = "s0 = ema(s0, g, 0.9)\ns1 = s1\ns2 = s2\nupdate = scale(sign(s0), -0.01)\n"
OTHER_PROGRAM = "s0 = ema_sq(s0, g, 0.99)\ns1 = s1\ns2 = s2\nupdate = scale(div(g, add_eps(sqrt(s0), 1e-08)), -0.01)\n"
GOOD_FILE = '''import torch


class Submission(torch.optim.Optimizer):
    def __init__(self, params, lr=0.01):
        super().__init__(params, dict(lr=lr))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad.sign(), alpha=-group["lr"])
'''
EDIT_REPLY = ("Use a longer momentum.\n<<<<<<< SEARCH\ns0 = ema(s0, g, 0.9)\n=======\n"
              "s0 = ema(s0, g, 0.95)\n>>>>>>> REPLACE\n")


@pytest.fixture(autouse=True)
def key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server():
    with FakeLLMServer() as fake:
        yield fake


def ensemble_for(server, **budgets) -> LLMEnsemble:
    spec = LLMSpec(provider="openai", model="test-model", base_url=server.url + "/v1", max_retries=0, timeout_s=5)
    return LLMEnsemble([spec], **budgets)


def context(program: str | None = PARENT_PROGRAM, source: str | None = None) -> PromptContext:
    parent_source = source or Program.from_text(program).render()
    return PromptContext(
        track="mqar", description="multi-query associative recall", target="eval accuracy >= 0.99",
        parent=CandidateInfo(id="1", fitness=0.9, source=parent_source, program=program,
                             summary="fail; final eval accuracy 0.9", curve=[(50, 0.3)]),
        other=CandidateInfo(id="2", fitness=0.8, source=Program.from_text(OTHER_PROGRAM).render(),
                            program=OTHER_PROGRAM))


def assert_no_secret(server, proposal: Proposal):
    for request in server.requests:
        assert SECRET not in str(request.body)
    assert SECRET not in repr(proposal)


def test_program_edit_accepted(server):
    server.push(openai_reply(EDIT_REPLY, tokens_in=100, tokens_out=20))
    proposal = propose("llm_edit", "program", context(), ensemble_for(server), random.Random(0))
    assert proposal.ok and proposal.kind == "program" and proposal.error is None
    assert "ema(s0, g, 0.95)" in proposal.genome
    assert proposal.source == Program.from_text(proposal.genome).render()
    [call] = proposal.calls
    assert call["outcome"] == "ok" and call["tokens_in"] == 100 and call["tokens_out"] == 20
    assert call["model"].startswith("openai:test-model@") and call["provider"] == "openai"
    assert "s0 = ema(s0, g, 0.9)" in server.requests[0].text()
    assert_no_secret(server, proposal)


def test_malformed_reply_is_repaired(server):
    server.push(openai_reply("I would raise the momentum, but here is no block."), openai_reply(EDIT_REPLY))
    proposal = propose("llm_edit", "program", context(), ensemble_for(server), random.Random(0))
    assert proposal.ok and proposal.repairs == 1
    assert [c["outcome"] for c in proposal.calls] == ["rejected", "ok"]
    repair_prompt = server.requests[1].text()
    assert "no SEARCH/REPLACE blocks found" in repair_prompt
    assert "here is no block" in repair_prompt  # the failed attempt is shown back
    assert proposal.calls[1]["prompt"].count("no SEARCH/REPLACE blocks found") >= 1


def test_unparsable_program_is_repaired(server):
    bad = "```program\ns0 = frobnicate(s0, g)\ns1 = s1\ns2 = s2\nupdate = scale(s0, -0.01)\n```"
    good = f"```program\n{OTHER_PROGRAM}```"
    server.push(openai_reply(bad), openai_reply(good))
    proposal = propose("llm_rewrite", "program", context(), ensemble_for(server), random.Random(0))
    assert proposal.ok and proposal.genome == Program.from_text(OTHER_PROGRAM).to_text()
    assert "program text does not parse" in proposal.calls[0]["error"]
    assert "frobnicate" in server.requests[1].text() and "does not parse" in server.requests[1].text()


def test_code_rewrite_accepted(server):
    server.push(openai_reply(f"Sign descent.\n```python\n{GOOD_FILE}```"))
    proposal = propose("llm_rewrite", "code", context(), ensemble_for(server), random.Random(0))
    assert proposal.ok and proposal.kind == "code" and proposal.genome is None
    assert proposal.source == GOOD_FILE


def test_import_os_is_rejected_after_repairs(server):
    evil = "```python\nimport os\n" + GOOD_FILE + "```"
    server.push(*[openai_reply(evil) for _ in range(3)])
    proposal = propose("llm_rewrite", "code", context(), ensemble_for(server), random.Random(0), max_repairs=2)
    assert not proposal.ok and proposal.source is None and proposal.genome is None
    assert len(proposal.calls) == 3 and {c["outcome"] for c in proposal.calls} == {"rejected"}
    assert "policy" in proposal.error and "os" in proposal.error and "\n" not in proposal.error
    assert "policy" in server.requests[2].text()


def test_code_edit_against_parent_source(server):
    reply = '<<<<<<< SEARCH\n    def __init__(self, params, lr=0.01):\n=======\n    def __init__(self, params, lr=0.002):\n>>>>>>> REPLACE'
    server.push(openai_reply(reply))
    proposal = propose("llm_edit", "code", context(program=None, source=GOOD_FILE), ensemble_for(server),
                       random.Random(0))
    assert proposal.ok and "lr=0.002" in proposal.source and proposal.kind == "code"


def test_crossover_program_level(server):
    server.push(openai_reply("A's momentum, B's normalization.\n```program\ns0 = ema(s0, g, 0.9)\n"
                             "s1 = ema_sq(s1, g, 0.99)\ns2 = s2\nupdate = scale(div(s0, add_eps(sqrt(s1), 1e-08)), -0.01)\n```"))
    proposal = propose("llm_crossover", "program", context(), ensemble_for(server), random.Random(0))
    assert proposal.ok and "ema_sq(s1, g, 0.99)" in proposal.genome
    assert "candidate 2" in server.requests[0].text()


def test_budget_holds_against_the_worst_case_of_the_next_call(server):
    from prompts.render import render
    from synth.llm.base import estimate_tokens

    system, user = render("edit", context(), "program")
    worst = estimate_tokens(system) + estimate_tokens(user) + 50  # the prompt plus max_tokens
    spec = LLMSpec(provider="openai", model="test-model", base_url=server.url + "/v1", max_retries=0, timeout_s=5,
                   max_tokens=50)
    ensemble = LLMEnsemble([spec], budget_tokens=3 * 30 + worst - 1)
    for _ in range(3):
        server.push(openai_reply(EDIT_REPLY, tokens_in=20, tokens_out=10))
        assert propose("llm_edit", "program", context(), ensemble, random.Random(0)).ok
    assert ensemble.tokens == 90 and ensemble.calls == 3
    proposal = propose("llm_edit", "program", context(), ensemble, random.Random(0))
    assert not proposal.ok and "token budget" in proposal.error and f"could need {worst}" in proposal.error
    assert proposal.calls == [] and len(server.requests) == 3  # never asked: it might have overspent
    assert ensemble.exhausted and any("LLM operators stop" in notice for notice in ensemble.notices)


def test_unavailable_provider_is_disabled_with_one_notice(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    ensemble = LLMEnsemble([LLMSpec(provider="anthropic", model="claude-haiku-4-5")])
    proposal = propose("llm_edit", "program", context(), ensemble, random.Random(0))
    assert not proposal.ok and "ANTHROPIC_API_KEY" in proposal.error
    assert proposal.calls[0]["outcome"] == "unavailable"
    assert ensemble.exhausted and "no LLM provider left" in ensemble.stop_reason
    assert sum("disabled for the rest of this run" in n for n in ensemble.notices) == 1


class FakeProvider:
    def __init__(self, spec):
        self.spec = spec

    def complete(self, system, user, *, temperature, max_tokens):
        if self.spec.model == "down":
            raise LLMUnavailable(f"{self.spec.label}: HTTP 401: bad key")
        return Completion(self.spec.model, 6, 4, 0.01, 0.0, "fake", self.spec.model)


def test_ensemble_weights_respected_for_fixed_rng():
    specs = [LLMSpec(provider="openai", model="a", weight=3), LLMSpec(provider="openai", model="b", weight=1)]
    ensemble = LLMEnsemble(specs, factory=FakeProvider)
    picks = [ensemble.complete("s", "u", random.Random(seed))[0].text for seed in range(2000)]
    assert 0.72 < picks.count("a") / len(picks) < 0.78
    reference = [random.Random(seed).choices(["a", "b"], weights=[3, 1])[0] for seed in range(2000)]
    assert picks == reference
    assert ensemble.calls == 2000 and ensemble.tokens_in == 12000


def test_ensemble_usd_budget_and_disabling():
    specs = [LLMSpec(provider="openai", model="down", weight=100), LLMSpec(provider="openai", model="up")]
    ensemble = LLMEnsemble(specs, budget_usd=0.05, factory=FakeProvider)
    rng = random.Random(1)
    with pytest.raises(LLMUnavailable):
        ensemble.complete("s", "u", rng)
    assert [s.model for s in ensemble.enabled] == ["up"]
    while not ensemble.exhausted:
        assert ensemble.complete("s", "u", rng)[1].model == "up"
    assert ensemble.calls == 5 and "cost budget" in ensemble.stop_reason


def test_unknown_operator():
    with pytest.raises(ValueError, match="unknown LLM operator"):
        propose("llm_mutate", "code", context(), None, random.Random(0))


def test_a_python_child_gets_its_own_docstring_not_its_ancestors():
    from synth.llm.operators import check_reply

    parent = Program.from_text(PARENT_PROGRAM).render(title="synth mqar candidate, operator mutate_node")
    ctx = context(source=parent)
    line = next(text for text in parent.splitlines() if text.strip() == "v1.mul_(-0.01)")  # the compiled step
    reply = ("NAME: bigger step\nDESCRIPTION: Twice the step.\n<<<<<<< SEARCH\n"
             f"{line}\n=======\n{line.replace('0.01', '0.02')}\n>>>>>>> REPLACE\n")
    _, source = check_reply("edit", "code", ctx, reply, title="synth mqar candidate, operator llm_edit")
    assert "operator llm_edit" in source and "mutate_node" not in source and "0.02" in source
    assert "update = scale(sign(s0), -0.01)" not in source  # the ancestor's program text went with its docstring


def test_a_policy_error_quotes_the_line_the_model_never_saw():
    from synth.llm.operators import Rejected, check_reply

    reply = f"```python\nimport os\n{GOOD_FILE}```\n"
    with pytest.raises(Rejected, match=r"line 1: \[import\].*\(the line: `import os`\)"):
        check_reply("rewrite", "code", context(), reply)


def test_the_models_name_and_description_are_kept():
    from synth.llm.operators import rationale

    assert rationale("**NAME:** sign momentum\nDESCRIPTION: Adam's moments, sign update.\n```program\nx\n```") == (
        "sign momentum", "Adam's moments, sign update.")
    assert rationale("no rationale here\n<<<<<<< SEARCH\nNAME: inside code\n") == (None, None)
