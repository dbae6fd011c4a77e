"""Scripted stand-ins for the OpenAI and Anthropic HTTP APIs, good enough for the real SDKs.

One `FakeLLMServer` on 127.0.0.1 (random port) answers `POST /v1/chat/completions` and
`POST /v1/messages` from a queue of scripted `Reply`s and records every request, so tests can
check retries, timeouts, prompt content and that no key leaked into a body. A `Reply(hang=True)`
holds the connection open until the server is closed (a threading.Event, not a sleep).

Broken servers come from the same parts: a `str` body is sent as it is (garbage, HTML, nothing)
under `content_type`; `openai_reply` / `anthropic_reply` can leave out the usage or the message,
send `text: null`, or stop at max_tokens; `slow_s` answers after that many seconds (for benches).
"""

from __future__ import annotations

import json
import queue
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    status: int = 200
    body: dict | str = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    content_type: str = "application/json"
    slow_s: float = 0.0  # answer after this long (benches only; tests never wait on time)
    wait_for: threading.Event | None = None  # answer once the test sets this event


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: dict

    def text(self) -> str:
        """All message text in the request (system and user), for content assertions."""
        parts = [self.body.get("system") or ""]
        for message in self.body.get("messages", []):
            content = message.get("content")
            parts.append(content if isinstance(content, str) else json.dumps(content))
        return "\n".join(parts)


def openai_reply(text: str | None, tokens_in: int = 11, tokens_out: int = 7, model: str = "test-model",
                 finish_reason: str = "stop", usage: bool = True, message: bool = True) -> Reply:
    choice = {"index": 0, "finish_reason": finish_reason, "logprobs": None}
    if message:
        choice["message"] = {"role": "assistant", "content": text}
    body = {"id": "chatcmpl-test", "object": "chat.completion", "created": 1700000000, "model": model,
            "choices": [choice]}
    if usage:
        body["usage"] = {"prompt_tokens": tokens_in, "completion_tokens": tokens_out,
                         "total_tokens": tokens_in + tokens_out}
    return Reply(body=body)


def anthropic_reply(text: str | None, tokens_in: int = 13, tokens_out: int = 5, model: str = "test-model",
                    stop_reason: str = "end_turn", usage: bool = True) -> Reply:
    body = {"id": "msg_test", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}], "stop_reason": stop_reason, "stop_sequence": None}
    if usage:
        body["usage"] = {"input_tokens": tokens_in, "output_tokens": tokens_out}
    return Reply(body=body)


def raw_reply(body: str, content_type: str = "application/json", status: int = 200) -> Reply:
    """A body sent exactly as given: garbage, an HTML page, or nothing at all."""
    return Reply(status=status, body=body, content_type=content_type)


def error_reply(status: int, message: str = "scripted error", headers: dict | None = None,
                code: str | None = None) -> Reply:
    """An error body both SDKs parse (OpenAI reads error.message, Anthropic error.type/message)."""
    return Reply(status=status, headers=headers or {},
                 body={"type": "error", "error": {"type": "api_error", "message": message, "code": code}})


class FakeLLMServer:
    """`with FakeLLMServer() as server:` ... `server.push(reply)`; `server.requests` afterwards."""

    def __init__(self):
        self.replies: queue.Queue[Reply] = queue.Queue()
        self.requests: list[Request] = []
        self.release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"_raw": raw.decode(errors="replace")}
                fake.requests.append(Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                try:
                    reply = fake.replies.get_nowait()
                except queue.Empty:  # unscripted: fail fast and tell the SDK not to retry
                    reply = error_reply(500, "no scripted reply left", {"x-should-retry": "false"})
                if reply.hang:
                    fake.release.wait()
                    return
                if reply.slow_s:
                    fake.release.wait(reply.slow_s)
                if reply.wait_for is not None:
                    reply.wait_for.wait()
                data = (reply.body if isinstance(reply.body, str) else json.dumps(reply.body)).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", reply.content_type)
                    self.send_header("content-length", str(len(data)))
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        """Base URL without a path (the Anthropic SDK's form); OpenAI's is `url + "/v1"`."""
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def push(self, *replies: Reply) -> "FakeLLMServer":
        for reply in replies:
            self.replies.put(reply)
        return self

    def __enter__(self) -> "FakeLLMServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
