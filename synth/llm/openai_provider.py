"""OpenAI Chat Completions through the openai SDK; with `base_url` also vLLM, Ollama, LM Studio, OpenRouter.

The retrying, the error mapping and the temperature fallback are shared with Anthropic
(synth/llm/sdk_provider.py); here is only the request and how to read a chat completion.
"""

from __future__ import annotations

from typing import Optional

from synth.llm.base import LLMMalformed
from synth.llm.sdk_provider import Reply, SDKProvider, describe_body
from synth.llm.spec import LLMSpec

# Reasoning models on api.openai.com refuse a custom temperature: never sent one.
REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5", "gpt-6")


class OpenAIProvider(SDKProvider):
    name = sdk_module = "openai"
    client_class, base_error = "OpenAI", "OpenAIError"

    @staticmethod
    def sends_temperature(spec: LLMSpec) -> bool:
        return bool(spec.base_url) or not spec.model.startswith(REASONING_PREFIXES)

    def request(self, system: str, user: str, max_tokens: int, temperature: Optional[float], timeout: float):
        params: dict = {"model": self.spec.model,
                        "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]}
        if self.spec.base_url:
            params["max_tokens"] = max_tokens  # what every OpenAI-compatible server understands
        else:
            params["max_completion_tokens"] = max_tokens  # what api.openai.com wants from all models
        if temperature is not None:
            params["temperature"] = temperature
        return self._client.chat.completions.create(**params, timeout=timeout)

    def read(self, reply) -> Reply:
        choices = getattr(reply, "choices", None)
        if not isinstance(choices, list) or not choices:
            raise LLMMalformed(f"{describe_body(reply)} (no choices)")
        choice = choices[0]
        message = getattr(choice, "message", None)
        text = getattr(message, "content", None)
        if message is None or not isinstance(text, str):
            raise LLMMalformed("the first choice has no message text")
        usage = getattr(reply, "usage", None)
        truncated = "finish_reason length" if getattr(choice, "finish_reason", None) == "length" else None
        return Reply(text, getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None), truncated)

    def out_of_quota(self, exc: Exception) -> bool:
        return getattr(exc, "code", None) == "insufficient_quota"
