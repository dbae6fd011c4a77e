"""OpenAI Chat Completions through the openai SDK; with `base_url` also vLLM, Ollama, LM Studio, OpenRouter.

The SDK does the retrying (exponential backoff on 429, 5xx, timeouts and connection errors,
honouring retry-after); this module only maps its exceptions onto LLMError and friends.
"""

from __future__ import annotations

import time

from synth.llm.base import Completion, LLMError, LLMTimeout, LLMUnavailable, one_line
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
            self._client = openai.OpenAI(api_key=self._key, timeout=spec.timeout_s,
                                         max_retries=spec.max_retries, **kwargs)

    def __repr__(self) -> str:
        return f"OpenAIProvider({self.spec.label})"

    def complete(self, system: str, user: str, *, temperature: float, max_tokens: int) -> Completion:
        import openai

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
            try:
                reply = self._create(params, temperature)
            except openai.BadRequestError as exc:
                if not self._send_temperature or "temperature" not in str(exc).lower():
                    raise
                self._send_temperature = False
                reply = self._create(params, temperature)
        except openai.APITimeoutError:
            raise LLMTimeout(f"{self.spec.label}: no reply within {self.spec.timeout_s:g} s "
                             f"({self.spec.max_retries} retries)") from None
        except openai.APIConnectionError as exc:
            raise LLMUnavailable(f"{self.spec.label}: cannot connect ({self._say(exc)})") from None
        except (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError) as exc:
            raise LLMUnavailable(f"{self.spec.label}: HTTP {exc.status_code}: {self._say(exc)}") from None
        except openai.APIStatusError as exc:
            cls = LLMUnavailable if getattr(exc, "code", None) == "insufficient_quota" else LLMError
            raise cls(f"{self.spec.label}: HTTP {exc.status_code}: {self._say(exc)}") from None
        except openai.OpenAIError as exc:
            raise LLMError(f"{self.spec.label}: {type(exc).__name__}: {self._say(exc)}") from None
        latency = time.perf_counter() - start
        if not getattr(reply, "choices", None):
            raise LLMError(f"{self.spec.label}: reply has no choices")
        text = reply.choices[0].message.content or ""
        usage = reply.usage
        tokens_in = int(getattr(usage, "prompt_tokens", 0) or 0)
        tokens_out = int(getattr(usage, "completion_tokens", 0) or 0)
        return Completion(text=text, tokens_in=tokens_in, tokens_out=tokens_out,
                          cost_usd=cost_usd(self.spec, tokens_in, tokens_out), latency_s=latency,
                          provider=self.name, model=self.spec.model)

    def _create(self, params: dict, temperature: float):
        extra = {"temperature": temperature} if self._send_temperature else {}
        return self._client.chat.completions.create(**params, **extra)

    def _say(self, exc: Exception) -> str:
        return one_line(getattr(exc, "message", None) or exc, secrets=[self._key])
