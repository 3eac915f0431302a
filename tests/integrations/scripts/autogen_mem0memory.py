"""Run by the AutoGen virtualenv (tests/integrations/test_autogen.py): autogen-ext's own
`Mem0Memory` (autogen-ext 0.7.5 with mem0ai 2.2.1, what `pip install 'autogen-ext[mem0]'` gets)
and `engram serve` at URL. Its defects reproduced, then the workaround of the docs (their
```python autogen-mem0 block, saved to FILE), which points it at the server.
Usage: autogen_mem0memory.py URL API_KEY FILE. Prints "ok autogen mem0memory".
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import runpy
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from autogen_core import CancellationToken
from autogen_core.memory import MemoryContent, MemoryMimeType
from autogen_core.model_context import UnboundedChatCompletionContext
from autogen_core.models import SystemMessage, UserMessage
from autogen_ext.memory.mem0 import Mem0Memory, _mem0
from mem0 import MemoryClient

URL, KEY = sys.argv[1], sys.argv[2]
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy")


@contextmanager
def recording_proxy() -> Iterator[list[str]]:
    """An HTTPS proxy for this process that refuses every tunnel and notes where it led: what
    Mem0Memory's client tries to reach, without the network."""
    targets: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_CONNECT(self) -> None:
            targets.append(self.path)
            self.send_error(403)

        def log_message(self, *args: Any) -> None:
            return None

    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    saved = {name: os.environ.pop(name) for name in PROXY_VARIABLES if name in os.environ}
    os.environ["HTTPS_PROXY"] = f"http://127.0.0.1:{proxy.server_address[1]}"
    try:
        yield targets
    finally:
        os.environ.pop("HTTPS_PROXY")
        os.environ.update(saved)
        proxy.shutdown()


@contextmanager
def refused(kind: type[BaseException], fragment: str) -> Iterator[None]:
    """The block must raise `kind`, with `fragment` in its message."""
    try:
        yield
    except kind as exc:
        if fragment not in str(exc):
            raise AssertionError(f"{fragment!r} not in {exc!r}") from exc
    else:
        raise AssertionError(f"no {kind.__name__} raised")


def defect_no_host() -> None:
    """Mem0Memory builds `MemoryClient(api_key=...)` without a host: whatever the environment
    says (mem0ai has no host variable; MEM0_HOST is tried here), it calls api.mem0.ai, and its
    constructor fails there before any memory call."""
    os.environ["MEM0_HOST"] = URL
    with recording_proxy() as targets, refused(httpx.ProxyError, "403"):
        Mem0Memory(user_id="alex", api_key=KEY)
    assert targets == ["api.mem0.ai:443"], targets
    del os.environ["MEM0_HOST"]


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def defect_search_on_mem0ai_2(log: Captured) -> None:
    """Given a host, Mem0Memory still searches as mem0ai 1.x did (`user_id=` at the top level);
    mem0ai 2.x refuses that before sending anything, and Mem0Memory turns the error into an empty
    result (logged only): every query finds nothing, every update_context adds nothing."""
    _mem0.MemoryClient = functools.partial(MemoryClient, host=URL)
    memory = Mem0Memory(user_id="bo", api_key=KEY)
    await memory.add(MemoryContent(content="I am vegetarian.", mime_type=MemoryMimeType.TEXT))
    stored = memory._client.get_all(filters={"user_id": "bo"})["results"]  # the add is queued
    for _ in range(300):
        if stored:
            break
        await asyncio.sleep(0.05)
        stored = memory._client.get_all(filters={"user_id": "bo"})["results"]
    assert [m["memory"] for m in stored] == ["Is vegetarian"], stored  # facts extracted, offline
    assert (await memory.query("vegetarian")).results == []
    assert any("Top-level entity parameters frozenset({'user_id'})" in m for m in log.messages), (
        log.messages
    )

    # Passing a CancellationToken to add fails: it reads `cancellation_token.cancelled`, which
    # autogen_core's CancellationToken does not have (`is_cancelled()` is its method).
    content = MemoryContent(content="Bo likes tea.", mime_type=MemoryMimeType.TEXT)
    with refused(AttributeError, "'CancellationToken' object has no attribute 'cancelled'"):
        await memory.add(content, CancellationToken())

    # dump_component() writes the API key into the component config, in clear text.
    assert memory.dump_component().config["api_key"] == KEY
    await memory.clear()


async def workaround(example: str) -> None:
    """The docs' workaround (the ```python autogen-mem0 block, saved to `example` with the
    server's address and key): it leaves a Mem0Memory for user alex, pointed at the server, in
    `memory`."""
    memory = runpy.run_path(example)["memory"]
    await memory.add(MemoryContent(content="I live in Porto.", mime_type=MemoryMimeType.TEXT,
                                   metadata={"source": "onboarding"}))  # fmt: skip
    found = (await memory.query("Where does Alex live?")).results
    assert [c.content for c in found] == ["Lives in Porto"], found
    assert found[0].metadata["source"] == "onboarding" and found[0].metadata["score"] > 0

    context = UnboundedChatCompletionContext()
    await context.add_message(UserMessage(content="Which city do I live in?", source="user"))
    await memory.update_context(context)
    last = (await context.get_messages())[-1]
    assert isinstance(last, SystemMessage) and "Lives in Porto" in last.content, last

    # Defect 3's other half: a cancelled token does not stop a query.
    token = CancellationToken()
    token.cancel()
    assert (await memory.query("Porto", token)).results, "a cancelled query was stopped"

    # A saved component config loads again against the server (with the key, see above).
    loaded = Mem0Memory.load_component(memory.dump_component())
    assert [c.content for c in (await loaded.query("Porto")).results] == ["Lives in Porto"]
    await memory.clear()
    assert (await loaded.query("Porto")).results == []


async def main() -> None:
    log = Captured()
    logging.getLogger("autogen_ext.memory.mem0._mem0").addHandler(log)
    defect_no_host()
    await defect_search_on_mem0ai_2(log)
    await workaround(sys.argv[3])


if __name__ == "__main__":
    asyncio.run(main())
    print("ok autogen mem0memory")
