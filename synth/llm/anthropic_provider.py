"""Anthropic Messages API through the anthropic SDK (optional `base_url` for proxies and gateways).

As with OpenAI, the SDK retries (429, 5xx incl. 529 overloaded, timeouts, connection errors);
this module maps its exceptions onto LLMError and friends and never lets the key into a message.

The 1.x/2.x SDKs dropped `temperature` from `messages.create()` (the API still takes it), so it
travels in `extra_body`; a model that refuses it (newer Claude models accept only the default)
is asked once more without it, and from then on never sent one.
"""

from __future__ import annotations

import time

from synth.llm.base import Completion, LLMError, LLMTimeout, LLMUnavailable, one_line
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
            self._client = anthropic.Anthropic(api_key=self._key, timeout=spec.timeout_s,
                                               max_retries=spec.max_retries, **kwargs)

    def __repr__(self) -> str:
        return f"AnthropicProvider({self.spec.label})"

    def complete(self, system: str, user: str, *, temperature: float, max_tokens: int) -> Completion:
        import anthropic

        if self._client is None:
            raise LLMUnavailable(f"{self.spec.label}: no API key (set {key_env(self.spec)})")
        start = time.perf_counter()
        try:
            try:
                reply = self._create(system, user, temperature, max_tokens)
            except anthropic.BadRequestError as exc:
                if not self._send_temperature or "temperature" not in str(exc).lower():
                    raise
                self._send_temperature = False
                reply = self._create(system, user, temperature, max_tokens)
        except anthropic.APITimeoutError:
            raise LLMTimeout(f"{self.spec.label}: no reply within {self.spec.timeout_s:g} s "
                             f"({self.spec.max_retries} retries)") from None
        except anthropic.APIConnectionError as exc:
            raise LLMUnavailable(f"{self.spec.label}: cannot connect ({self._say(exc)})") from None
        except (anthropic.AuthenticationError, anthropic.PermissionDeniedError, anthropic.NotFoundError) as exc:
            raise LLMUnavailable(f"{self.spec.label}: HTTP {exc.status_code}: {self._say(exc)}") from None
        except anthropic.APIStatusError as exc:
            raise LLMError(f"{self.spec.label}: HTTP {exc.status_code}: {self._say(exc)}") from None
        except anthropic.AnthropicError as exc:
            raise LLMError(f"{self.spec.label}: {type(exc).__name__}: {self._say(exc)}") from None
        latency = time.perf_counter() - start
        text = "".join(block.text for block in (reply.content or []) if getattr(block, "type", "") == "text")
        tokens_in = int(getattr(reply.usage, "input_tokens", 0) or 0)
        tokens_out = int(getattr(reply.usage, "output_tokens", 0) or 0)
        return Completion(text=text, tokens_in=tokens_in, tokens_out=tokens_out,
                          cost_usd=cost_usd(self.spec, tokens_in, tokens_out), latency_s=latency,
                          provider=self.name, model=self.spec.model)

    def _create(self, system: str, user: str, temperature: float, max_tokens: int):
        extra = {"temperature": temperature} if self._send_temperature else None
        return self._client.messages.create(
            model=self.spec.model, system=system, max_tokens=max_tokens, extra_body=extra,
            messages=[{"role": "user", "content": user}], timeout=self.spec.timeout_s)

    def _say(self, exc: Exception) -> str:
        return one_line(getattr(exc, "message", None) or exc, secrets=[self._key])
