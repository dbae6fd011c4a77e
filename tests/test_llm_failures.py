"""Every way a model server can misbehave ends as a recorded LLMError with one line, never an
exception: the real SDKs against scripted servers that send garbage, HTML, nothing, half a reply."""

from __future__ import annotations

import random

import pytest

from synth.llm.anthropic_provider import AnthropicProvider
from synth.llm.base import Completion, LLMError, LLMMalformed, LLMTimeout, LLMTruncated
from synth.llm.ensemble import BudgetExhausted, LLMEnsemble
from synth.llm.openai_provider import OpenAIProvider
from synth.llm.pricing import cost_usd, price_of
from synth.llm.spec import LLMSpec

try:
    from tests.llm_servers import FakeLLMServer, Reply, anthropic_reply, openai_reply, raw_reply
except ImportError:  # tests/ not a package
    from llm_servers import FakeLLMServer, Reply, anthropic_reply, openai_reply, raw_reply

KINDS = {"openai": (OpenAIProvider, openai_reply, "/v1"), "anthropic": (AnthropicProvider, anthropic_reply, "")}
HTML = "<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
                 "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-failures")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-failures")


@pytest.fixture
def server():
    with FakeLLMServer() as fake:
        yield fake


def provider(kind: str, server, **settings):
    cls, _, suffix = KINDS[kind]
    return cls(LLMSpec(provider=kind, model="test-model", base_url=server.url + suffix,
                       **{"timeout_s": 5, "max_retries": 0, **settings}))


BROKEN = {
    "not json": lambda kind: raw_reply("this is {not json"),
    "empty body": lambda kind: raw_reply(""),
    "html": lambda kind: raw_reply(HTML, content_type="text/html"),
    "json list": lambda kind: raw_reply("[1, 2, 3]"),
    "no message": lambda kind: openai_reply("x", message=False) if kind == "openai" else anthropic_reply(None),
    "text null": lambda kind: openai_reply(None) if kind == "openai" else anthropic_reply(None),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("broken", sorted(BROKEN))
def test_malformed_reply_is_one_line_llm_error(kind, broken, server):
    server.push(BROKEN[broken](kind))
    with pytest.raises(LLMError) as info:
        provider(kind, server).complete("s", "u", temperature=0.0, max_tokens=10)
    message = str(info.value)
    assert "\n" not in message and "test-model" in message and len(message) <= 300
    assert isinstance(info.value, LLMMalformed) and info.value.outcome == "malformed", message
    assert info.value.latency_s > 0


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_truncated_answer_is_an_error_that_still_counts_its_tokens(kind, server):
    reply = (openai_reply("half an ans", 100, 10, finish_reason="length") if kind == "openai"
             else anthropic_reply("half an ans", 100, 10, stop_reason="max_tokens"))
    server.push(reply)
    with pytest.raises(LLMTruncated, match="truncated at max_tokens=10") as info:
        provider(kind, server).complete("s", "u", temperature=0.0, max_tokens=10)
    assert (info.value.completion.tokens_in, info.value.completion.tokens_out) == (100, 10)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_missing_usage_is_estimated_from_the_text(kind, server):
    _, reply, _ = KINDS[kind]
    server.push(reply("y" * 400, usage=False))
    done = provider(kind, server).complete("s" * 80, "u" * 320, temperature=0.0, max_tokens=500)
    assert done.estimated and (done.tokens_in, done.tokens_out) == (100, 100)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_hung_server_costs_one_deadline_not_retries_times_timeout(kind, server):
    server.push(Reply(hang=True), Reply(hang=True), Reply(hang=True))
    with pytest.raises(LLMTimeout, match="no reply within 0.5 s") as info:
        provider(kind, server, timeout_s=0.5, max_retries=3).complete("s", "u", temperature=0.0, max_tokens=10)
    assert len(server.requests) == 1  # the first attempt used the whole deadline: no retry after it
    assert info.value.latency_s >= 0.5


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_two_megabyte_reply_is_read_and_capped_in_the_repair_prompt(kind, server):
    from prompts.render import ATTEMPT_CAP
    from synth.llm.operators import ProposalRun

    try:
        from tests.test_llm_operators import context
    except ImportError:
        from test_llm_operators import context
    _, reply, _ = KINDS[kind]
    huge = "no blocks here " * 140_000  # about 2 MB
    server.push(reply(huge))
    done = provider(kind, server).complete("s", "u", temperature=0.0, max_tokens=10)
    run = ProposalRun("llm_edit", "program", context())
    first_prompt = len(run.user)
    run.on_reply(done, LLMSpec(provider=kind, model="test-model"))
    assert run.proposal.calls[0]["outcome"] == "rejected" and not run.done
    assert len(run.user) < first_prompt + ATTEMPT_CAP + 3000 and "characters cut" in run.user


def test_o3_pro_is_not_priced_as_o3_and_dated_ids_still_match():
    assert price_of(LLMSpec(provider="openai", model="o3-pro")) is None
    assert price_of(LLMSpec(provider="openai", model="o3-2025-04-16")) == price_of(LLMSpec(provider="openai", model="o3"))
    assert price_of(LLMSpec(provider="openai", model="gpt-4.1-mini-2025-04-14")) == (0.40, 1.60)
    assert price_of(LLMSpec(provider="anthropic", model="claude-sonnet-4-5-20250929")) == (3.00, 15.00)


class Plugin:
    """A provider plugin with bugs of its own."""

    def __init__(self, spec):
        self.spec = spec

    def complete(self, system, user, *, temperature, max_tokens):
        if self.spec.model == "raises":
            raise KeyError("choices")
        if self.spec.model == "wrong-type":
            return {"text": "hi"}
        if self.spec.model == "fails":
            raise LLMError(f"{self.spec.label}: HTTP 500: boom")
        tokens_in = (len(system) + 3) // 4 + (len(user) + 3) // 4
        return Completion("ok", tokens_in, max_tokens, cost_usd(self.spec, tokens_in, max_tokens), 0.0, "plugin",
                          self.spec.model)


@pytest.mark.parametrize("model, message", [("raises", "provider failed: KeyError"),
                                            ("wrong-type", "returned dict, not a Completion")])
def test_a_plugin_that_breaks_is_an_llm_error(model, message):
    ensemble = LLMEnsemble([LLMSpec(provider="plugin", model=model)], factory=Plugin)
    with pytest.raises(LLMError, match=message):
        ensemble.complete("s", "u", random.Random(0))


def test_a_plugin_that_cannot_start_disables_only_itself():
    def factory(spec):
        if spec.model == "broken":
            raise ImportError("no module named plugin_sdk")
        return Plugin(spec)

    specs = [LLMSpec(provider="plugin", model="broken", weight=1000), LLMSpec(provider="plugin", model="ok")]
    ensemble = LLMEnsemble(specs, factory=factory)
    with pytest.raises(LLMError, match="could not start: ImportError"):
        ensemble.complete("s", "u", random.Random(0))
    assert ensemble.complete("s", "u", random.Random(0))[1].model == "ok"


def test_failures_cool_a_model_down_instead_of_disabling_it():
    ensemble = LLMEnsemble([LLMSpec(provider="plugin", model="fails")], factory=Plugin, cooldown_s=3600)
    for _ in range(2):
        with pytest.raises(LLMError):
            ensemble.complete("s", "u", random.Random(0))
    assert ensemble.ready == [] and ensemble.enabled and not ensemble.exhausted
    assert sum("cools down for 3600 s after 2 failed calls" in n for n in ensemble.notices) == 1
    ensemble = LLMEnsemble([LLMSpec(provider="plugin", model="fails")], factory=Plugin, cooldown_s=0)
    for _ in range(5):  # a zero cool-down: it is asked again every time, never disabled
        with pytest.raises(LLMError, match="HTTP 500"):
            ensemble.complete("s", "u", random.Random(0))
    assert not ensemble.disabled


def test_a_dollar_budget_never_overshoots_and_is_restored_from_earlier_spending():
    spec = LLMSpec(provider="plugin", model="ok", price_in=1000.0, price_out=1000.0, max_tokens=5)
    # worst case of a call: (ceil(1/4) + ceil(400/4)) tokens in + 5 out at $1000 per million = $0.106
    ensemble = LLMEnsemble([spec], budget_usd=1.0, factory=Plugin, spent={"calls": 3, "cost_usd": 0.7,
                                                                          "tokens_in": 1, "tokens_out": 1})
    calls = 0
    while True:
        try:
            ensemble.complete("s", "u" * 400, random.Random(0))
        except BudgetExhausted as exc:
            assert "could cost $0.1060" in str(exc)
            break
        calls += 1
    assert calls == 2 and ensemble.cost_usd <= 1.0 and ensemble.calls == 5
