"""A small OpenAI-compatible HTTP server for tests: real sockets, scripted faults.

`FakeOpenAI()` starts on a free loopback port in a thread. Queue faults with `fail(status, ...)`;
each request takes the next fault, or is answered normally when none is queued. `requests` keeps
every request (path, headers, JSON body) for assertions.
"""

from __future__ import annotations

import json
import threading
import time
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


class FakeOpenAI:
    def __init__(self, dims: int = 64, api_key: str | None = "test-key") -> None:
        self.dims = dims
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._embedder = HashingEmbedder(dims)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def fail(self, status: int = 500, *, body: str | None = None, times: int = 1,
             headers: dict[str, str] | None = None, delay: float = 0.0) -> None:  # fmt: skip
        with self._lock:
            self._faults.extend(Fault(status, body, headers or {}, delay) for _ in range(times))

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next_fault(self) -> Fault | None:
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
                fault = fake._next_fault()
                if fault is not None:
                    time.sleep(fault.delay)
                    error = {"error": {"message": f"injected {fault.status}"}}
                    self._send(fault.status, fault.body or json.dumps(error), fault.headers)
                    return
                if fake.api_key and self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    self._send(401, json.dumps({"error": {"message": "bad key"}}), {})
                    return
                if self.path.endswith("/embeddings"):
                    self._send(200, json.dumps(fake._embeddings(body)), {})
                else:
                    self._send(404, json.dumps({"error": {"message": "no route"}}), {})

        return Handler
