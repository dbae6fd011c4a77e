"""Which model to call and how: one `LLMSpec` per `--llm` option, parsed from a short string.

    openai:gpt-4.1-mini
    anthropic:claude-sonnet-4-5
    openai:qwen2.5-coder:7b@http://127.0.0.1:11434/v1,weight=2,temperature=0.5,max_tokens=2000

Keys never live here: they are read from the environment at call time (`resolve_key`), so a
spec can be printed, logged and stored in the run database as it is.
"""

from __future__ import annotations

import ipaddress
import os
import re
from typing import Optional
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationError

FORM = "PROVIDER:MODEL[@BASE_URL][,key=value...] e.g. openai:gpt-4.1-mini@http://127.0.0.1:8000/v1,weight=2"
KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
PLACEHOLDER_KEY = "EMPTY"  # what vLLM, Ollama and LM Studio accept when they check no key
OPTION_ALIASES = {"timeout": "timeout_s", "retries": "max_retries"}


class LLMSpec(BaseModel):
    """One model in the ensemble, with its share of the calls and its call settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: str
    model: str
    base_url: Optional[str] = None
    weight: float = Field(1.0, gt=0)
    temperature: float = Field(0.8, ge=0, le=2)
    max_tokens: int = Field(4096, gt=0)
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(3, ge=0, le=20)
    price_in: Optional[float] = Field(None, ge=0)  # USD per million input tokens; overrides the table
    price_out: Optional[float] = Field(None, ge=0)  # USD per million output tokens

    @property
    def label(self) -> str:
        return f"{self.provider}:{self.model}" + (f"@{self.base_url}" if self.base_url else "")


OPTIONS = tuple(name for name in LLMSpec.model_fields if name not in ("provider", "model", "base_url"))


def parse_llm_spec(text: str) -> LLMSpec:
    """Parse a CLI string; a bad one raises ValueError with one line that shows the expected form."""
    from synth.llm.registry import installed_providers

    def bad(why: str) -> ValueError:
        return ValueError(f"bad LLM spec {text!r}: {why}; expected {FORM}")

    head, *options = [part.strip() for part in text.strip().split(",")]
    provider, sep, rest = head.partition(":")
    if not sep or not provider or not rest:
        raise bad("missing PROVIDER:MODEL")
    known = installed_providers()
    if provider not in known:
        raise bad(f"unknown provider {provider!r} (installed: {', '.join(sorted(known)) or 'none'})")
    match = re.search(r"@(https?://\S+)$", rest)
    model, base_url = (rest[: match.start()], match.group(1)) if match else (rest, None)
    if not match and re.search(r"@(\w+://|[\w.-]+:\d+)", rest):
        raise bad("base URL must start with http:// or https://")
    if not model:
        raise bad("missing MODEL")
    fields: dict[str, object] = {"provider": provider, "model": model, "base_url": base_url}
    for option in options:
        key, eq, value = (s.strip() for s in option.partition("="))
        key = OPTION_ALIASES.get(key, key)
        if not eq or key not in OPTIONS:
            raise bad(f"unknown option {option!r} (options: {', '.join(OPTIONS)})")
        fields[key] = value
    try:
        return LLMSpec(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise bad(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None


def key_env(spec: LLMSpec) -> str:
    return KEY_ENV.get(spec.provider, f"{spec.provider.upper()}_API_KEY")


def is_local(base_url: str | None) -> bool:
    """A base URL on this machine or a private network (a self-hosted server, usually keyless)."""
    if not base_url:
        return False
    host = urlparse(base_url).hostname or ""
    if host == "localhost" or host.endswith(".local"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_unspecified


def resolve_key(spec: LLMSpec) -> str | None:
    """The key to send: the env var's value; a placeholder for a custom base URL; None if missing."""
    key = os.environ.get(key_env(spec), "").strip()
    if key:
        return key
    return PLACEHOLDER_KEY if spec.base_url else None


def key_status(spec: LLMSpec) -> str:
    """For `synth doctor`-style listings: says whether a call could authenticate, never the key."""
    env = key_env(spec)
    if os.environ.get(env, "").strip():
        return "set"
    if is_local(spec.base_url):
        return "not needed (local base URL)"
    if spec.base_url:
        return f"missing (set {env} unless this server needs no key; sending {PLACEHOLDER_KEY!r})"
    return f"missing (set {env})"
