"""A small OpenAI- and Anthropic-compatible HTTP server for tests: real sockets, scripted replies.

`FakeOpenAI()` starts on a free loopback port in a thread. It answers `POST /v1/embeddings`
(hashing vectors), `POST /v1/chat/completions` (OpenAI) and `POST /v1/messages` (Anthropic).
Queue faults with `fail(status, ...)` and chat answers with `reply(text_or_json, ...)`; each
request takes the next queued item, else embeddings are computed and chat requests go to
`responder(request_json) -> text` (default: `{"facts": []}`). `requests` keeps every request.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from engram.providers.embedders.hashing import HashingEmbedder


@dataclass
class Fault:
    status: int = 500
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class ChatReply:
    text: str
    prompt_tokens: int = 100
    completion_tokens: int = 20
    finish_reason: str = "stop"


class FakeOpenAI:
    def __init__(self, dims: int = 64, api_key: str | None = "test-key") -> None:
        self.dims = dims
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self._faults: list[Fault | ChatReply] = []
        self.responder: Callable[[dict[str, Any]], str | ChatReply] = lambda _: '{"facts": []}'
        self._lock = threading.Lock()
        self._embedder = HashingEmbedder(dims)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def fail(self, status: int = 500, *, body: str | None = None, times: int = 1,
             headers: dict[str, str] | None = None, delay: float = 0.0) -> None:  # fmt: skip
        with self._lock:
            self._faults.extend(Fault(status, body, headers or {}, delay) for _ in range(times))

    def reply(self, *answers: str | dict[str, Any], prompt_tokens: int = 100,
              completion_tokens: int = 20, finish_reason: str = "stop") -> None:  # fmt: skip
        """Queue chat answers (dicts are sent as JSON text)."""
        with self._lock:
            for answer in answers:
                text = answer if isinstance(answer, str) else json.dumps(answer)
                self._faults.append(
                    ChatReply(text, prompt_tokens, completion_tokens, finish_reason)
                )

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if not r["path"].endswith("/embeddings")]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next_fault(self) -> Fault | ChatReply | None:
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    def _embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        vectors = self._embedder.embed_sync(inputs)
        return {
            "object": "list",
            "model": body.get("model"),
            "data": [
                {"object": "embedding", "index": i, "embedding": v.tolist()}
                for i, v in reversed(list(enumerate(vectors)))  # out of order on purpose
            ],
            "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)},
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def _send(self, status: int, payload: str, headers: dict[str, str]) -> None:
                data = payload.encode()
                # The client may have given up waiting (a deadline test): nobody to answer.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "json": body}
                )
                item = fake._next_fault()
                if isinstance(item, Fault):
                    time.sleep(item.delay)
                    error = {"error": {"message": f"injected {item.status}"}}
                    self._send(item.status, item.body or json.dumps(error), item.headers)
                    return
                if not self._authorized():
                    self._send(401, json.dumps({"error": {"message": "bad key"}}), {})
                    return
                if self.path.endswith("/embeddings"):
                    self._send(200, json.dumps(fake._embeddings(body)), {})
                    return
                if item is None:
                    answer = fake.responder(body)
                    item = answer if isinstance(answer, ChatReply) else ChatReply(answer)
                reply = item
                if self.path.endswith("/chat/completions") and body.get("stream"):
                    self._stream(_openai_chunks(body, reply))
                elif self.path.endswith("/chat/completions"):
                    self._send(200, json.dumps(_openai_answer(body, reply)), {})
                elif self.path.endswith("/messages"):
                    self._send(200, json.dumps(_anthropic_answer(body, reply)), {})
                else:
                    self._send(404, json.dumps({"error": {"message": "no route"}}), {})

            def _stream(self, events: list[str]) -> None:
                """Server-sent events, one `data:` line each, then `[DONE]`."""
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Cache-Control", "no-cache")
                    self.end_headers()
                    for event in [*events, "[DONE]"]:
                        self.wfile.write(f"data: {event}\n\n".encode())
                        self.wfile.flush()
                    self.close_connection = True

            def do_GET(self) -> None:
                if self.path.endswith("/models") and self._authorized():
                    models = {"object": "list", "data": [{"id": "fake-model", "object": "model",
                                                          "owned_by": "tests"}]}  # fmt: skip
                    self._send(200, json.dumps(models), {})
                else:
                    self._send(404, json.dumps({"error": {"message": "no route"}}), {})

            def _authorized(self) -> bool:
                if not fake.api_key:
                    return True
                bearer = self.headers.get("Authorization") == f"Bearer {fake.api_key}"
                return bearer or fake.api_key in (
                    self.headers.get("x-api-key"),
                    self.headers.get("api-key"),
                )

        return Handler


def _openai_answer(body: dict[str, Any], reply: ChatReply) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "model": body.get("model"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.text},
                "finish_reason": reply.finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        },
    }


def _openai_chunks(body: dict[str, Any], reply: ChatReply) -> list[str]:
    """The reply as `chat.completion.chunk` events: the role, then the text a word at a time,
    then the finish reason."""
    words = reply.text.split(" ")
    deltas = [{"role": "assistant", "content": ""}] + [
        {"content": w if i == 0 else " " + w} for i, w in enumerate(words)
    ]

    def chunk(delta: dict[str, Any], finish: str | None) -> str:
        return json.dumps({
            "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0,
            "model": body.get("model"),
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })  # fmt: skip

    return [chunk(d, None) for d in deltas] + [chunk({}, reply.finish_reason)]


def _anthropic_answer(body: dict[str, Any], reply: ChatReply) -> dict[str, Any]:
    """A forced tool call's input when the text is a JSON object, else a text block."""
    try:
        data = json.loads(reply.text)
    except ValueError:
        data = None
    tool = (body.get("tool_choice") or {}).get("name")
    if isinstance(data, dict) and tool:
        block: dict[str, Any] = {
            "type": "tool_use",
            "id": "toolu_fake",
            "name": tool,
            "input": data,
        }
    else:
        block = {"type": "text", "text": reply.text}
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": body.get("model"),
        "content": [block],
        "stop_reason": "tool_use" if block["type"] == "tool_use" else "end_turn",
        "usage": {"input_tokens": reply.prompt_tokens, "output_tokens": reply.completion_tokens},
    }
