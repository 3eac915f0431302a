"""Run by the AutoGen virtualenv (tests/integrations/test_autogen.py): EngramMemory, AutoGen's
`Memory` interface, over each kind of store.

Usage: autogen_memory.py library | autogen_memory.py remote URL API_KEY. `library`: an engram
AsyncMemory and a Memory on temporary stores (the hashing embedder, no LLM); `remote`: mem0's
MemoryClient and AsyncMemoryClient against `engram serve` at URL. Prints "ok autogen <mode>".
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from autogen_core import CancellationToken
from autogen_core.memory import Memory as AutoGenMemory
from autogen_core.memory import MemoryContent, MemoryMimeType
from autogen_core.model_context import BufferedChatCompletionContext
from autogen_core.models import AssistantMessage, SystemMessage, UserMessage

from engram import AsyncMemory, Memory
from engram.integrations.autogen import HEADER, EngramMemory


def text(value: str, **metadata: Any) -> MemoryContent:
    return MemoryContent(content=value, mime_type=MemoryMimeType.TEXT, metadata=metadata or None)


def contents(found: Any) -> list[str]:
    return [item.content for item in found.results]


@contextmanager
def refused(kind: type[BaseException], fragment: str = "") -> Iterator[None]:
    """The block must raise `kind`, with `fragment` in its message."""
    try:
        yield
    except kind as exc:
        if fragment not in str(exc):
            raise AssertionError(f"{fragment!r} not in {exc!r}") from exc
    else:
        raise AssertionError(f"no {kind.__name__} raised")


async def exercise(store: Any, user: str) -> None:
    """Every method of the interface, with `store` behind it; `user` is this run's scope."""
    memory = EngramMemory(store, user_id=user, infer=False)
    other = EngramMemory(store, user_id=f"{user}-other", infer=False)
    assert isinstance(memory, AutoGenMemory)
    await memory.add(text("Alex is vegetarian.", source="onboarding"))
    await memory.add(text("Alex lives in Lisbon."))
    await memory.add(MemoryContent(content={"favourite_colour": "green"},
                                   mime_type="application/json"))  # fmt: skip
    await other.add(text("Bo lives in Lisbon too."))
    await queries(memory)
    await context_updates(memory)

    # A cancelled token cancels the call; content Engram cannot store is refused, not dropped.
    token = CancellationToken()
    token.cancel()
    with refused(asyncio.CancelledError):
        await memory.add(text("Never stored."), token)
    with refused(ValueError, "text/plain"):
        await memory.add(MemoryContent(content=b"\x89PNG", mime_type=MemoryMimeType.BINARY))

    await memory.clear()
    assert (await memory.query("Alex")).results == []
    assert contents(await other.query("Lisbon")) == ["Bo lives in Lisbon too."]
    await other.clear()
    await memory.close()  # the store was passed in: it stays open (the caller's)


async def queries(memory: EngramMemory) -> None:
    found = await memory.query("Where does Alex live?")
    assert contents(found)[0] == "Alex lives in Lisbon.", found
    assert "Bo lives in Lisbon too." not in contents(found)  # another scope
    first = found.results[0]
    assert first.mime_type == MemoryMimeType.TEXT
    assert first.metadata["id"] and 0 < first.metadata["score"] <= 1, first.metadata
    assert first.metadata["created_at"] and first.metadata["updated_at"], first.metadata
    vegetarian = (await memory.query(text("vegetarian"))).results[0]
    assert vegetarian.content == "Alex is vegetarian.", vegetarian
    assert vegetarian.metadata["source"] == "onboarding"  # the content's own metadata kept
    colour = contents(await memory.query("favourite_colour green"))
    assert colour[0] == '{"favourite_colour": "green"}', colour
    assert len((await memory.query("Alex", limit=1)).results) == 1
    assert (await memory.query("Alex", threshold=0.99)).results == []
    narrowed = await memory.query("Alex", filters={"source": "onboarding"})
    assert contents(narrowed) == ["Alex is vegetarian."], narrowed
    assert (await memory.query("  ")).results == []


async def context_updates(memory: EngramMemory) -> None:
    """The latest *user* message is the query; the memories arrive as one system message."""
    context = BufferedChatCompletionContext(buffer_size=10)
    await context.add_message(UserMessage(content="Any vegetarian restaurants nearby?",
                                          source="user"))  # fmt: skip
    await context.add_message(AssistantMessage(content="Let me think.", source="assistant"))
    updated = await memory.update_context(context)
    assert contents(updated.memories)[0] == "Alex is vegetarian.", updated
    messages = await context.get_messages()
    assert len(messages) == 3 and isinstance(messages[-1], SystemMessage), messages
    assert messages[-1].content.startswith(HEADER)
    assert "1. Alex is vegetarian." in messages[-1].content, messages[-1].content
    empty = BufferedChatCompletionContext(buffer_size=10)
    assert (await memory.update_context(empty)).memories.results == []
    assert await empty.get_messages() == []


async def inference(data_dir: str) -> None:
    """The default (mem0's): facts extracted from the content (offline here, no LLM)."""
    config = {"embedder": {"provider": "hashing"}, "data_dir": data_dir}
    memory = EngramMemory(config=config, user_id="cy")
    await memory.add(text("I am vegetarian and I live in Porto."))
    found = set(contents(await memory.query("Where does Cy live? vegetarian")))
    assert found == {"Lives in Porto", "Is vegetarian"}, found
    # Built from a config: an AutoGen component, dumped and loaded again.
    dumped = memory.dump_component()
    assert dumped.provider == "engram.integrations.autogen.EngramMemory", dumped
    assert dumped.config["user_id"] == "cy" and dumped.config["config"]["data_dir"] == data_dir
    loaded = EngramMemory.load_component(dumped)
    assert "Lives in Porto" in contents(await loaded.query("Porto"))
    await loaded.close()
    await memory.close()
    with Memory(config) as store, refused(TypeError, "built from a config"):
        EngramMemory(store, user_id="cy").dump_component()
    with refused(ValueError, "user_id"):
        EngramMemory(config=config)


async def library() -> None:
    with tempfile.TemporaryDirectory() as first, tempfile.TemporaryDirectory() as second:
        store = AsyncMemory({"embedder": {"provider": "hashing"}, "data_dir": first})
        await exercise(store, "alex")
        assert await store.search("Alex", user_id="alex") == {"results": []}  # still open
        await store.close()
        with Memory({"embedder": {"provider": "hashing"}, "data_dir": second}) as blocking:
            await exercise(blocking, "alex")
        await inference(first)


async def remote(url: str, key: str) -> None:
    from mem0 import AsyncMemoryClient, MemoryClient

    await exercise(MemoryClient(api_key=key, host=url), "alex-sync")
    await exercise(AsyncMemoryClient(api_key=key, host=url), "alex-async")


if __name__ == "__main__":
    mode = sys.argv[1]
    asyncio.run(library() if mode == "library" else remote(sys.argv[2], sys.argv[3]))
    print(f"ok autogen {mode}")
