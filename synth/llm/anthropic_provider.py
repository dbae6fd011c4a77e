"""Anthropic Messages API through the anthropic SDK (optional `base_url` for proxies and gateways).

As with OpenAI, `with_deadline` does the retrying (429, 5xx incl. 529 overloaded, timeouts,
connection errors) within one total deadline; every reply the protocol does not allow (invalid
JSON, an empty or HTML body, `text: null`) and an answer cut at max_tokens is an LLMError.

The 1.x/2.x SDKs dropped `temperature` from `messages.create()` (the API still takes it), so it
travels in `extra_body`; a model that refuses it (newer Claude models accept only the default)
is asked once more without it, and from then on never sent one.
"""

from __future__ import annotations

import time

from synth.llm.base import (Completion, LLMError, LLMMalformed, LLMTimeout, LLMTruncated, LLMUnavailable,
                            estimate_tokens, one_line, with_deadline)
from synth.llm.pricing import cost_usd, price_note
from synth.llm.spec import LLMSpec, key_env, resolve_key


class AnthropicProvider:
    name = "anthropic"

    def __init__(self, spec: LLMSpec):
        import anthropic

        self.spec = spec
        self.price_note = price_note(spec)
        self._key = resolve_key(spec)
        self._client = None
        self._send_temperature = True
        if self._key is not None:
            kwargs = {"base_url": spec.base_url} if spec.base_url else {}
            # An explicit api_key keeps the SDK from reading profiles or other credential sources.
            self._client = anthropic.Anthropic(api_key=self._key, timeout=spec.timeout_s, max_retries=0, **kwargs)

    def __repr__(self) -> str:
        return f"AnthropicProvider({self.spec.label})"

    def complete(self, system: str, user: str, *, temperature: float, max_tokens: int) -> Completion:
        if self._client is None:
            raise LLMUnavailable(f"{self.spec.label}: no API key (set {key_env(self.spec)})")
        start = time.perf_counter()
        try:
            reply = with_deadline(lambda left: self._create(system, user, temperature, max_tokens, left),
                                  timeout_s=self.spec.timeout_s, max_retries=self.spec.max_retries,
                                  retry_after=self._retry_after)
            return self._completion(reply, system + user, max_tokens, time.perf_counter() - start)
        except LLMError as exc:
            exc.latency_s = time.perf_counter() - start
            raise
        except Exception as exc:
            raise self._error(exc, time.perf_counter() - start) from None

    def _create(self, system: str, user: str, temperature: float, max_tokens: int, timeout: float):
        import anthropic

        try:
            return self._send(system, user, temperature, max_tokens, timeout)
        except anthropic.BadRequestError as exc:
            if not self._send_temperature or "temperature" not in str(exc).lower():
                raise
            self._send_temperature = False
            return self._send(system, user, temperature, max_tokens, timeout)

    def _send(self, system: str, user: str, temperature: float, max_tokens: int, timeout: float):
        extra = {"temperature": temperature} if self._send_temperature else None
        return self._client.messages.create(
            model=self.spec.model, system=system, max_tokens=max_tokens, extra_body=extra,
            messages=[{"role": "user", "content": user}], timeout=timeout)

    def _completion(self, reply, prompt: str, max_tokens: int, latency: float) -> Completion:
        label = self.spec.label
        content = getattr(reply, "content", None)
        if not isinstance(content, list):
            what = ("empty body" if isinstance(reply, str) and not reply.strip() else
                    f"body {one_line(reply, limit=80)!r}" if isinstance(reply, str) else type(reply).__name__)
            raise LLMMalformed(f"{label}: malformed reply: {what} (no content)")
        texts = [getattr(block, "text", None) for block in content if getattr(block, "type", "") == "text"]
        if not texts or not all(isinstance(t, str) for t in texts):
            raise LLMMalformed(f"{label}: malformed reply: no text in the content blocks")
        text = "".join(texts)
        usage = getattr(reply, "usage", None)
        tokens_in = getattr(usage, "input_tokens", None)
        tokens_out = getattr(usage, "output_tokens", None)
        estimated = not isinstance(tokens_in, int) or not isinstance(tokens_out, int)
        if estimated:
            tokens_in, tokens_out = estimate_tokens(prompt), estimate_tokens(text)
        done = Completion(text=text, tokens_in=tokens_in, tokens_out=tokens_out,
                          cost_usd=cost_usd(self.spec, tokens_in, tokens_out), latency_s=latency,
                          provider=self.name, model=self.spec.model, estimated=estimated)
        if getattr(reply, "stop_reason", None) == "max_tokens":
            raise LLMTruncated(f"{label}: reply truncated at max_tokens={max_tokens} (stop_reason max_tokens)",
                               latency, done)
        return done

    @staticmethod
    def _retry_after(exc: Exception):
        import anthropic

        if isinstance(exc, (anthropic.APITimeoutError, anthropic.APIConnectionError)):
            return -1.0
        if isinstance(exc, anthropic.APIStatusError) and (exc.status_code in (408, 409, 429) or exc.status_code >= 500):
            header = exc.response.headers.get("retry-after") if exc.response is not None else None
            try:
                return float(header) if header is not None else -1.0
            except ValueError:
                return -1.0
        return None

    def _error(self, exc: Exception, latency: float) -> LLMError:
        import anthropic

        label = self.spec.label
        if isinstance(exc, anthropic.APITimeoutError):
            return LLMTimeout(f"{label}: no reply within {self.spec.timeout_s:g} s "
                              f"(deadline for the call, {self.spec.max_retries} retries allowed)", latency)
        if isinstance(exc, anthropic.APIConnectionError):
            return LLMUnavailable(f"{label}: cannot connect ({self._say(exc)})", latency)
        if isinstance(exc, (anthropic.AuthenticationError, anthropic.PermissionDeniedError, anthropic.NotFoundError)):
            return LLMUnavailable(f"{label}: HTTP {exc.status_code}: {self._say(exc)}", latency)
        if isinstance(exc, anthropic.APIStatusError):
            return LLMError(f"{label}: HTTP {exc.status_code}: {self._say(exc)}", latency)
        return LLMMalformed(f"{label}: malformed reply ({type(exc).__name__}: {self._say(exc)})", latency)

    def _say(self, exc: Exception) -> str:
        return one_line(getattr(exc, "message", None) or exc, secrets=[self._key])
