"""What the openai and anthropic providers share: both SDKs are generated from one template (the
same client options, the same exception classes), so a provider states only its request and how
to read its reply.

The SDKs' own retries are off: `with_deadline` retries 429, 5xx, timeouts and connection errors
(honouring retry-after) within one total deadline per call. Whatever the server sends back ends
as an LLMError with one line, never an SDK or JSON exception. A model that refuses `temperature`
(the 400 names it) is asked once more without, and from then on never sent one.
"""

from __future__ import annotations

import importlib
import time
from typing import Optional

from synth.llm.base import (Completion, LLMError, LLMMalformed, LLMTimeout, LLMTruncated, LLMUnavailable,
                            estimate_tokens, one_line, with_deadline)
from synth.llm.pricing import cost_usd, price_note
from synth.llm.spec import LLMSpec, key_env, resolve_key


class Reply:
    """The parts of a reply every provider has; `truncated` names why it stopped early, if it did."""

    def __init__(self, text: str, tokens_in, tokens_out, truncated: Optional[str]) -> None:
        self.text, self.tokens_in, self.tokens_out, self.truncated = text, tokens_in, tokens_out, truncated


class SDKProvider:
    name: str
    sdk_module: str  # "openai" or "anthropic"
    client_class: str  # the SDK's client, e.g. "OpenAI"
    base_error: str  # the SDK's root exception, e.g. "OpenAIError"

    def __init__(self, spec: LLMSpec):
        self.sdk = importlib.import_module(self.sdk_module)
        self.spec = spec
        self.price_note = price_note(spec)
        self._key = resolve_key(spec)
        self._client = None
        self._send_temperature = self.sends_temperature(spec)
        if self._key is not None:
            kwargs = {"base_url": spec.base_url} if spec.base_url else {}
            # An explicit api_key keeps the SDK from reading profiles or other credential sources.
            self._client = getattr(self.sdk, self.client_class)(api_key=self._key, timeout=spec.timeout_s,
                                                                max_retries=0, **kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec.label})"

    # ------------------------------------------------------------------ what a provider states
    @staticmethod
    def sends_temperature(spec: LLMSpec) -> bool:
        return True

    def request(self, system: str, user: str, max_tokens: int, temperature: Optional[float], timeout: float):
        raise NotImplementedError

    def read(self, reply) -> Reply:
        """The reply's text and usage; raises LLMMalformed (message without the label) when it has none."""
        raise NotImplementedError

    def out_of_quota(self, exc: Exception) -> bool:
        return False

    # ------------------------------------------------------------------ shared
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
        try:
            return self.request(system, user, max_tokens, temperature if self._send_temperature else None, timeout)
        except self.sdk.BadRequestError as exc:
            if not self._send_temperature or "temperature" not in str(exc).lower():
                raise
            self._send_temperature = False
            return self.request(system, user, max_tokens, None, timeout)

    def _completion(self, reply, prompt: str, max_tokens: int, latency: float) -> Completion:
        try:
            got = self.read(reply)
        except LLMMalformed as exc:
            raise LLMMalformed(f"{self.spec.label}: malformed reply: {exc}") from None
        tokens_in, tokens_out = got.tokens_in, got.tokens_out
        estimated = not isinstance(tokens_in, int) or not isinstance(tokens_out, int)
        if estimated:
            tokens_in, tokens_out = estimate_tokens(prompt), estimate_tokens(got.text)
        done = Completion(text=got.text, tokens_in=tokens_in, tokens_out=tokens_out,
                          cost_usd=cost_usd(self.spec, tokens_in, tokens_out), latency_s=latency,
                          provider=self.name, model=self.spec.model, estimated=estimated)
        if got.truncated:
            raise LLMTruncated(f"{self.spec.label}: reply truncated at max_tokens={max_tokens} ({got.truncated})",
                               latency, done)
        return done

    def _retry_after(self, exc: Exception) -> Optional[float]:
        sdk = self.sdk
        if isinstance(exc, (sdk.APITimeoutError, sdk.APIConnectionError)):
            return -1.0
        if isinstance(exc, sdk.APIStatusError) and (exc.status_code in (408, 409, 429) or exc.status_code >= 500):
            if self.out_of_quota(exc):
                return None
            header = exc.response.headers.get("retry-after") if exc.response is not None else None
            try:
                return float(header) if header is not None else -1.0
            except ValueError:
                return -1.0
        return None

    def _error(self, exc: Exception, latency: float) -> LLMError:
        sdk, label = self.sdk, self.spec.label
        if isinstance(exc, sdk.APITimeoutError):
            return LLMTimeout(f"{label}: no reply within {self.spec.timeout_s:g} s "
                              f"(deadline for the call, {self.spec.max_retries} retries allowed)", latency)
        if isinstance(exc, sdk.APIConnectionError):
            return LLMUnavailable(f"{label}: cannot connect ({self._say(exc)})", latency)
        if isinstance(exc, (sdk.AuthenticationError, sdk.PermissionDeniedError, sdk.NotFoundError)):
            return LLMUnavailable(f"{label}: HTTP {exc.status_code}: {self._say(exc)}", latency)
        if isinstance(exc, sdk.APIStatusError):
            cls = LLMUnavailable if self.out_of_quota(exc) else LLMError
            return cls(f"{label}: HTTP {exc.status_code}: {self._say(exc)}", latency)
        if isinstance(exc, getattr(sdk, self.base_error)):
            return LLMMalformed(f"{label}: malformed reply: {type(exc).__name__}: {self._say(exc)}", latency)
        return LLMMalformed(f"{label}: malformed reply ({type(exc).__name__}: {self._say(exc)})", latency)

    def _say(self, exc: Exception) -> str:
        return one_line(getattr(exc, "message", None) or exc, secrets=[self._key])


def describe_body(reply) -> str:
    """A short description of a reply that is not the SDK's object (an SDK may hand back a raw str)."""
    if isinstance(reply, str):
        return f"body {one_line(reply, limit=80)!r}" if reply.strip() else "empty body"
    return type(reply).__name__
