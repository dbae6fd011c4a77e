"""Providers against scripted local servers that speak the real OpenAI / Anthropic protocols."""

from __future__ import annotations

import socket
import time

import pytest

from synth.llm.anthropic_provider import AnthropicProvider
from synth.llm.base import LLMError, LLMTimeout, LLMUnavailable
from synth.llm.openai_provider import OpenAIProvider
from synth.llm.pricing import cost_usd, price_note
from synth.llm.registry import installed_providers, load_provider
from synth.llm.spec import LLMSpec, key_status, parse_llm_spec

try:
    from tests.llm_servers import FakeLLMServer, Reply, anthropic_reply, error_reply, openai_reply
except ImportError:  # tests/ not a package
    from llm_servers import FakeLLMServer, Reply, anthropic_reply, error_reply, openai_reply

OPENAI_SECRET = "sk-test-OPENAI-SECRET-0123456789"
ANTHROPIC_SECRET = "sk-ant-test-ANTHROPIC-SECRET-0123456789"
KINDS = {
    "openai": (OpenAIProvider, openai_reply, "/v1", "/v1/chat/completions", "gpt-4.1-mini"),
    "anthropic": (AnthropicProvider, anthropic_reply, "", "/v1/messages", "claude-haiku-4-5"),
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "OPENAI_BASE_URL",
                 "ANTHROPIC_BASE_URL", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server():
    with FakeLLMServer() as fake:
        yield fake


def make(kind: str, server, monkeypatch, **settings):
    cls, reply, suffix, path, model = KINDS[kind]
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_SECRET)
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_SECRET)
    spec = LLMSpec(provider=kind, model=model, base_url=server.url + suffix,
                   **{"timeout_s": 5, "max_retries": 2, **settings})
    return cls(spec), reply, path


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_good_reply_parsed_with_usage(kind, server, monkeypatch):
    provider, reply, path = make(kind, server, monkeypatch)
    server.push(reply("hello there", tokens_in=1000, tokens_out=2000))
    done = provider.complete("SYSTEM-TEXT", "USER-TEXT", temperature=0.3, max_tokens=123)
    assert (done.text, done.tokens_in, done.tokens_out, done.provider) == ("hello there", 1000, 2000, kind)
    assert done.cost_usd == pytest.approx(cost_usd(provider.spec, 1000, 2000)) and done.cost_usd > 0
    assert done.latency_s >= 0
    [request] = server.requests
    assert request.path == path
    assert "SYSTEM-TEXT" in request.text() and "USER-TEXT" in request.text()
    assert request.body["temperature"] == 0.3 and request.body["max_tokens"] == 123
    secret = OPENAI_SECRET if kind == "openai" else ANTHROPIC_SECRET
    assert secret not in str(request.body)  # the key travels in a header only
    assert secret in (request.headers.get("authorization", "") + request.headers.get("x-api-key", ""))
    assert secret not in repr(provider)


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("status", [429, 500])
def test_retried_then_success(kind, status, server, monkeypatch):
    provider, reply, _ = make(kind, server, monkeypatch)
    server.push(error_reply(status, "slow down", {"retry-after": "0"}), reply("second time lucky"))
    done = provider.complete("s", "u", temperature=0.0, max_tokens=10)
    assert done.text == "second time lucky"
    assert len(server.requests) == 2


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_retries_exhausted_is_llm_error(kind, server, monkeypatch):
    provider, _, _ = make(kind, server, monkeypatch, max_retries=0)
    server.push(error_reply(500, "boom"))
    with pytest.raises(LLMError, match="HTTP 500") as info:
        provider.complete("s", "u", temperature=0.0, max_tokens=10)
    assert not isinstance(info.value, LLMUnavailable) and "\n" not in str(info.value)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_hung_server_times_out(kind, server, monkeypatch):
    provider, _, _ = make(kind, server, monkeypatch, timeout_s=0.5, max_retries=0)
    server.push(Reply(hang=True))
    start = time.perf_counter()
    with pytest.raises(LLMTimeout, match="0.5 s"):
        provider.complete("s", "u", temperature=0.0, max_tokens=10)
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_auth_error_is_unavailable_and_key_redacted(kind, server, monkeypatch):
    provider, _, _ = make(kind, server, monkeypatch)
    secret = OPENAI_SECRET if kind == "openai" else ANTHROPIC_SECRET
    server.push(error_reply(401, f"Incorrect API key provided: {secret}"))
    with pytest.raises(LLMUnavailable, match="HTTP 401") as info:
        provider.complete("s", "u", temperature=0.0, max_tokens=10)
    assert secret not in str(info.value) and "[redacted]" in str(info.value)
    assert len(server.requests) == 1  # auth errors are not retried


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_missing_key_without_base_url_is_unavailable_without_network(kind, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("network used")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    provider = KINDS[kind][0](LLMSpec(provider=kind, model=KINDS[kind][4]))
    env = "OPENAI_API_KEY" if kind == "openai" else "ANTHROPIC_API_KEY"
    with pytest.raises(LLMUnavailable, match=f"set {env}"):
        provider.complete("s", "u", temperature=0.0, max_tokens=10)


def test_base_url_without_key_sends_placeholder(server):
    provider = OpenAIProvider(LLMSpec(provider="openai", model="local-model", base_url=server.url + "/v1"))
    server.push(openai_reply("ok"))
    assert provider.complete("s", "u", temperature=0.0, max_tokens=10).cost_usd == 0.0
    assert server.requests[0].headers["authorization"] == "Bearer EMPTY"
    assert provider.price_note and "$0" in provider.price_note


def test_connection_refused_is_unavailable():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provider = OpenAIProvider(LLMSpec(provider="openai", model="m", base_url=f"http://127.0.0.1:{port}/v1",
                                      max_retries=0, timeout_s=2))
    with pytest.raises(LLMUnavailable, match="cannot connect"):
        provider.complete("s", "u", temperature=0.0, max_tokens=10)


def test_pricing_table_override_and_unknown():
    known = LLMSpec(provider="openai", model="gpt-4.1-mini-2025-04-14")
    assert cost_usd(known, 1_000_000, 1_000_000) == pytest.approx(0.40 + 1.60)
    assert price_note(known) is None
    unknown = LLMSpec(provider="openai", model="my-own-model")
    assert cost_usd(unknown, 10**6, 10**6) == 0.0 and "no price known" in price_note(unknown)
    priced = LLMSpec(provider="openai", model="my-own-model", price_in=1.0, price_out=2.0)
    assert cost_usd(priced, 10**6, 10**6) == pytest.approx(3.0) and price_note(priced) is None


GOOD_SPECS = [
    ("openai:gpt-4.1-mini", dict(provider="openai", model="gpt-4.1-mini", base_url=None)),
    ("anthropic:claude-sonnet-4-5", dict(provider="anthropic", model="claude-sonnet-4-5")),
    ("openai:gpt-4.1-mini@http://127.0.0.1:8000/v1",
     dict(model="gpt-4.1-mini", base_url="http://127.0.0.1:8000/v1")),
    ("openai:gpt-4.1-mini@http://127.0.0.1:8000/v1,weight=2,temperature=0.5,max_tokens=2000",
     dict(base_url="http://127.0.0.1:8000/v1", weight=2.0, temperature=0.5, max_tokens=2000)),
    ("openai:qwen2.5-coder:7b@http://localhost:11434/v1", dict(model="qwen2.5-coder:7b")),
    ("openai:x, timeout=0.5, retries=0, price_in=1, price_out=2",
     dict(timeout_s=0.5, max_retries=0, price_in=1.0, price_out=2.0)),
    ("anthropic:claude-haiku-4-5@https://gateway.example.com", dict(base_url="https://gateway.example.com")),
]
BAD_SPECS = ["", "openai", "openai:", ":gpt", "nosuch:model", "openai:m,weight", "openai:m,colour=red",
             "openai:m,weight=-1", "openai:m,temperature=hot", "openai:m@localhost:8000",
             "openai:@http://127.0.0.1:8000/v1"]


@pytest.mark.parametrize("text,expected", GOOD_SPECS)
def test_parse_llm_spec(text, expected):
    spec = parse_llm_spec(text)
    assert {k: getattr(spec, k) for k in expected} == expected


@pytest.mark.parametrize("text", BAD_SPECS)
def test_parse_llm_spec_rejects(text):
    with pytest.raises(ValueError) as info:
        parse_llm_spec(text)
    message = str(info.value)
    assert "\n" not in message and "PROVIDER:MODEL" in message


def test_key_status(monkeypatch):
    assert key_status(parse_llm_spec("openai:gpt-4.1")) == "missing (set OPENAI_API_KEY)"
    assert key_status(parse_llm_spec("anthropic:claude-sonnet-4-5")) == "missing (set ANTHROPIC_API_KEY)"
    assert key_status(parse_llm_spec("openai:m@http://127.0.0.1:8000/v1")) == "not needed (local base URL)"
    assert key_status(parse_llm_spec("openai:m@https://openrouter.ai/api/v1")).startswith("missing (set OPENAI_API_KEY")
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_SECRET)
    status = key_status(parse_llm_spec("openai:gpt-4.1"))
    assert status == "set" and OPENAI_SECRET not in repr(parse_llm_spec("openai:gpt-4.1"))


def test_registry_lists_and_loads_providers(monkeypatch):
    installed = installed_providers()
    assert installed["openai"] == "synth.llm.openai_provider:OpenAIProvider"
    assert installed["anthropic"] == "synth.llm.anthropic_provider:AnthropicProvider"
    assert isinstance(load_provider(parse_llm_spec("openai:gpt-4.1")), OpenAIProvider)
    assert isinstance(load_provider(parse_llm_spec("anthropic:claude-sonnet-4-5")), AnthropicProvider)
    with pytest.raises(ValueError, match="unknown LLM provider"):
        load_provider(LLMSpec(provider="nosuch", model="m"))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_refused_temperature_is_dropped(kind, server, monkeypatch):
    provider, reply, _ = make(kind, server, monkeypatch)
    server.push(error_reply(400, "temperature is deprecated for this model"), reply("one"), reply("two"))
    assert provider.complete("s", "u", temperature=0.7, max_tokens=10).text == "one"
    assert provider.complete("s", "u", temperature=0.7, max_tokens=10).text == "two"
    assert [("temperature" in r.body) for r in server.requests] == [True, False, False]
