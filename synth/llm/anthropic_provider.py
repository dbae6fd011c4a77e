"""Anthropic Messages API through the anthropic SDK (optional `base_url` for proxies and gateways).

The retrying (429, 5xx incl. 529 overloaded, timeouts, connection errors), the error mapping and
the temperature fallback are shared with OpenAI (synth/llm/sdk_provider.py). The 1.x/2.x SDKs
dropped `temperature` from `messages.create()` (the API still takes it), so it travels in
`extra_body`; newer Claude models that accept only the default refuse it once, then never get it.
"""

from __future__ import annotations

from typing import Optional

from synth.llm.base import LLMMalformed
from synth.llm.sdk_provider import Reply, SDKProvider, describe_body


class AnthropicProvider(SDKProvider):
    name = sdk_module = "anthropic"
    client_class, base_error = "Anthropic", "AnthropicError"

    def request(self, system: str, user: str, max_tokens: int, temperature: Optional[float], timeout: float):
        extra = {"temperature": temperature} if temperature is not None else None
        return self._client.messages.create(
            model=self.spec.model, system=system, max_tokens=max_tokens, extra_body=extra,
            messages=[{"role": "user", "content": user}], timeout=timeout)

    def read(self, reply) -> Reply:
        content = getattr(reply, "content", None)
        if not isinstance(content, list):
            raise LLMMalformed(f"{describe_body(reply)} (no content)")
        texts = [getattr(block, "text", None) for block in content if getattr(block, "type", "") == "text"]
        if not texts or not all(isinstance(t, str) for t in texts):
            raise LLMMalformed("no text in the content blocks")
        usage = getattr(reply, "usage", None)
        truncated = "stop_reason max_tokens" if getattr(reply, "stop_reason", None) == "max_tokens" else None
        return Reply("".join(texts), getattr(usage, "input_tokens", None), getattr(usage, "output_tokens", None),
                     truncated)
