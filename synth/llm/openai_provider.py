"""OpenAI Chat Completions through the openai SDK; with `base_url` also vLLM, Ollama, LM Studio, OpenRouter.

The SDK's own retries are off: `with_deadline` retries 429, 5xx, timeouts and connection errors
(honouring retry-after) within one total deadline per call. Whatever the server sends back -- not
JSON, HTML, an empty body, a choice without a message, an answer cut at max_tokens -- ends as an
LLMError with one line, never an SDK or JSON exception.
"""

from __future__ import annotations

import time

from synth.llm.base import (Completion, LLMError, LLMMalformed, LLMTimeout, LLMTruncated, LLMUnavailable,
                            estimate_tokens, one_line, with_deadline)
from synth.llm.pricing import cost_usd, price_note
from synth.llm.spec import LLMSpec, key_env, resolve_key

# Reasoning models on api.openai.com refuse a custom temperature; any other model that refuses it
# (the 400 names "temperature") is asked once more without, and from then on never sent one.
REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5", "gpt-6")


class OpenAIProvider:
    name = "openai"

    def __init__(self, spec: LLMSpec):
        import openai

        self.spec = spec
        self.price_note = price_note(spec)
        self._key = resolve_key(spec)
        self._client = None
        self._send_temperature = not (not spec.base_url and spec.model.startswith(REASONING_PREFIXES))
        if self._key is not None:
            kwargs = {"base_url": spec.base_url} if spec.base_url else {}
            self._client = openai.OpenAI(api_key=self._key, timeout=spec.timeout_s, max_retries=0, **kwargs)

    def __repr__(self) -> str:
        return f"OpenAIProvider({self.spec.label})"

    def complete(self, system: str, user: str, *, temperature: float, max_tokens: int) -> Completion:
        if self._client is None:
            raise LLMUnavailable(f"{self.spec.label}: no API key (set {key_env(self.spec)})")
        params: dict = {"model": self.spec.model,
                        "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]}
        if self.spec.base_url:
            params["max_tokens"] = max_tokens  # what every OpenAI-compatible server understands
        else:
            params["max_completion_tokens"] = max_tokens  # what api.openai.com wants from all models
        start = time.perf_counter()
        try:
            reply = with_deadline(lambda left: self._create(params, temperature, left), timeout_s=self.spec.timeout_s,
                                  max_retries=self.spec.max_retries, retry_after=self._retry_after)
            return self._completion(reply, system + user, max_tokens, time.perf_counter() - start)
        except LLMError as exc:
            exc.latency_s = time.perf_counter() - start
            raise
        except Exception as exc:
            raise self._error(exc, time.perf_counter() - start) from None

    def _create(self, params: dict, temperature: float, timeout: float):
        import openai

        extra = {"temperature": temperature} if self._send_temperature else {}
        try:
            return self._client.chat.completions.create(**params, **extra, timeout=timeout)
        except openai.BadRequestError as exc:
            if not self._send_temperature or "temperature" not in str(exc).lower():
                raise
            self._send_temperature = False
            return self._client.chat.completions.create(**params, timeout=timeout)

    def _completion(self, reply, prompt: str, max_tokens: int, latency: float) -> Completion:
        label = self.spec.label
        choices = getattr(reply, "choices", None)
        if not isinstance(choices, list) or not choices:
            raise LLMMalformed(f"{label}: malformed reply: {_what(reply)} (no choices)")
        choice = choices[0]
        message = getattr(choice, "message", None)
        text = getattr(message, "content", None)
        if message is None or not isinstance(text, str):
            raise LLMMalformed(f"{label}: malformed reply: the first choice has no message text")
        usage = getattr(reply, "usage", None)
        tokens_in = getattr(usage, "prompt_tokens", None)
        tokens_out = getattr(usage, "completion_tokens", None)
        estimated = not isinstance(tokens_in, int) or not isinstance(tokens_out, int)
        if estimated:
            tokens_in, tokens_out = estimate_tokens(prompt), estimate_tokens(text)
        done = Completion(text=text, tokens_in=tokens_in, tokens_out=tokens_out,
                          cost_usd=cost_usd(self.spec, tokens_in, tokens_out), latency_s=latency,
                          provider=self.name, model=self.spec.model, estimated=estimated)
        if getattr(choice, "finish_reason", None) == "length":
            raise LLMTruncated(f"{label}: reply truncated at max_tokens={max_tokens} (finish_reason length)",
                               latency, done)
        return done

    @staticmethod
    def _retry_after(exc: Exception):
        import openai

        if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError)):
            return -1.0
        if isinstance(exc, openai.APIStatusError) and (exc.status_code in (408, 409, 429) or exc.status_code >= 500):
            if getattr(exc, "code", None) == "insufficient_quota":
                return None
            header = exc.response.headers.get("retry-after") if exc.response is not None else None
            try:
                return float(header) if header is not None else -1.0
            except ValueError:
                return -1.0
        return None

    def _error(self, exc: Exception, latency: float) -> LLMError:
        import openai

        label = self.spec.label
        if isinstance(exc, openai.APITimeoutError):
            return LLMTimeout(f"{label}: no reply within {self.spec.timeout_s:g} s "
                              f"(deadline for the call, {self.spec.max_retries} retries allowed)", latency)
        if isinstance(exc, openai.APIConnectionError):
            return LLMUnavailable(f"{label}: cannot connect ({self._say(exc)})", latency)
        if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError)):
            return LLMUnavailable(f"{label}: HTTP {exc.status_code}: {self._say(exc)}", latency)
        if isinstance(exc, openai.APIStatusError):
            cls = LLMUnavailable if getattr(exc, "code", None) == "insufficient_quota" else LLMError
            return cls(f"{label}: HTTP {exc.status_code}: {self._say(exc)}", latency)
        if isinstance(exc, openai.OpenAIError):
            return LLMMalformed(f"{label}: malformed reply: {type(exc).__name__}: {self._say(exc)}", latency)
        return LLMMalformed(f"{label}: malformed reply ({type(exc).__name__}: {self._say(exc)})", latency)

    def _say(self, exc: Exception) -> str:
        return one_line(getattr(exc, "message", None) or exc, secrets=[self._key])


def _what(reply) -> str:
    """A short description of a reply that is not a chat completion (an SDK may hand back a raw str)."""
    if isinstance(reply, str):
        return f"body {one_line(reply, limit=80)!r}" if reply.strip() else "empty body"
    return type(reply).__name__
