"""LangChain over Engram: `EngramRetriever` (memories as `Document`s), `EngramChatMessageHistory`
(a session's messages) and `memory_tools` (remember, recall and forget, for an agent).

Each takes an engram `Memory` / `AsyncMemory`, or mem0's `MemoryClient` / `AsyncMemoryClient`
pointed at `engram serve`, and a scope (user_id, agent_id, run_id). Blocking backends serve the
sync and the async methods; async ones the async methods only. Needs
`pip install 'engram-llm[langchain]'`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from engram.errors import MissingDependencyError
from engram.integrations._backend import Backend

try:
    from langchain_core.chat_history import BaseChatMessageHistory
    from langchain_core.documents import Document
    from langchain_core.messages import BaseMessage, messages_from_dict
    from langchain_core.retrievers import BaseRetriever
    from langchain_core.tools import BaseTool, StructuredTool
    from pydantic import BaseModel, Field, PrivateAttr
except ImportError as exc:  # pragma: no cover - the extra is installed wherever this runs
    raise MissingDependencyError(
        "engram.integrations.langchain needs LangChain: pip install 'engram-llm[langchain]'"
    ) from exc

__all__ = ["EngramChatMessageHistory", "EngramRetriever", "memory_tools"]


class EngramRetriever(BaseRetriever):
    """The memories of a scope that best match the query, best first, as `Document`s: the
    memory's text is `page_content`; its id, score, metadata, ids and timestamps are in
    `metadata` (the memory's own metadata under `metadata["metadata"]`).

    `filters` (mem0's filter language) narrow the scope; `threshold` drops weaker matches."""

    memory: Any
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    top_k: int = 5
    filters: dict[str, Any] | None = None
    threshold: float | None = None
    _backend: Backend = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        self._backend = Backend(
            self.memory, user_id=self.user_id, agent_id=self.agent_id, run_id=self.run_id
        )

    def _options(self) -> dict[str, Any]:
        return {"top_k": self.top_k, "filters": self.filters, "threshold": self.threshold}

    def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Document]:
        return [_document(item) for item in self._backend.search(query, **self._options())]

    async def _aget_relevant_documents(self, query: str, *, run_manager: Any) -> list[Document]:
        found = await self._backend.asearch(query, **self._options())
        return [_document(item) for item in found]


def _document(item: Mapping[str, Any]) -> Document:
    metadata = {k: v for k, v in item.items() if k not in ("memory", "hash")}
    return Document(page_content=item["memory"], metadata=metadata, id=item.get("id"))


# -- chat message history -----------------------------------------------------------------------

ROLES = {"human": "user", "ai": "assistant", "tool": "tool", "function": "tool"}


class EngramChatMessageHistory(BaseChatMessageHistory):
    """The messages of one conversation, kept in Engram: each stored verbatim (`infer=False`)
    in the scope `run_id=session_id` (with `user_id` / `agent_id` when given), so they are
    also found by a search of that user's memories; `messages` lists them oldest first and
    `clear()` deletes them.

    `extract=True` also runs mem0's fact extraction (`add(infer=True)`) on each batch of
    messages, into the user's or agent's scope without the session: the long-term memories
    that outlive the conversation. System messages are instructions, not conversation, and
    messages without text (an AI turn that only calls tools) are not stored, as in mem0."""

    def __init__(
        self,
        memory: Any,
        session_id: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        extract: bool = False,
    ) -> None:
        self.session_id = session_id
        self._session = Backend(memory, user_id=user_id, agent_id=agent_id, run_id=session_id)
        self._long_term: Backend | None = None
        if extract:
            if user_id is None and agent_id is None:
                raise ValueError("extract=True stores facts for a user or agent: give user_id")
            self._long_term = Backend(memory, user_id=user_id, agent_id=agent_id)

    @property
    def messages(self) -> list[BaseMessage]:
        return _messages(self._session.list_all())

    async def aget_messages(self) -> list[BaseMessage]:
        return _messages(await self._session.alist_all())

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        for args in self._adds(messages):
            self._session.call("add", **args)
        if self._long_term is not None and (turns := _turns(messages)):
            self._long_term.call("add", **self._long_term.add_args(turns, infer=True))

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        for args in self._adds(messages):
            await self._session.acall("add", **args)
        if self._long_term is not None and (turns := _turns(messages)):
            await self._long_term.acall("add", **self._long_term.add_args(turns, infer=True))

    def clear(self) -> None:
        """Delete this session's messages (the long-term facts stay)."""
        self._session.call("delete_all", **self._session.scope)

    async def aclear(self) -> None:
        await self._session.acall("delete_all", **self._session.scope)

    def _adds(self, messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
        """One verbatim add per message: each carries its own LangChain fields as metadata."""
        return [
            self._session.add_args([turn], infer=False, metadata={"langchain": _fields(message)})
            for message in messages
            if (turn := _turn(message)) is not None
        ]


def _turn(message: BaseMessage) -> dict[str, str] | None:
    """A message as mem0's `{"role", "content", "name"?}`; None when it is not stored."""
    role = ROLES.get(message.type) or getattr(message, "role", None)
    text = message.text
    if role not in ("user", "assistant", "tool") or not text.strip():
        return None
    turn = {"role": role, "content": text}
    if message.name:
        turn["name"] = message.name
    return turn


def _turns(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    return [turn for message in messages if (turn := _turn(message)) is not None]


def _fields(message: BaseMessage) -> dict[str, Any]:
    """What rebuilds the message besides its text: its type and its non-empty fields."""
    data = {k: v for k, v in message.model_dump().items() if v and k not in ("content", "type")}
    return {"type": message.type, "data": data}


def _messages(items: list[dict[str, Any]]) -> list[BaseMessage]:
    """The stored messages rebuilt, oldest first (`items` come newest first)."""
    newest_first = sorted(items, key=lambda item: item["created_at"], reverse=True)  # stable
    ordered = newest_first[::-1]
    rebuilt: list[BaseMessage] = messages_from_dict([_rebuilt(item) for item in ordered])
    return rebuilt


def _rebuilt(item: dict[str, Any]) -> dict[str, Any]:
    """LangChain's dict form of a stored message; one written by another client (no
    `langchain` metadata) is rebuilt from its role."""
    fields = (item.get("metadata") or {}).get("langchain") or {}
    kind = fields.get("type") or {"assistant": "ai"}.get(item.get("role") or "", "human")
    return {"type": kind, "data": {**fields.get("data", {}), "content": item["memory"]}}


# -- tools --------------------------------------------------------------------------------------


class _Remember(BaseModel):
    text: str = Field(description="The fact, preference or event to remember, in plain words.")


class _Recall(BaseModel):
    query: str = Field(description="What to look for, in plain words.")


class _Forget(BaseModel):
    memory_id: str = Field(description="The id of the memory, as `recall` shows it.")


def memory_tools(
    memory: Any,
    *,
    user_id: str | None = None,
    agent_id: str | None = None,
    run_id: str | None = None,
    infer: bool = True,
    top_k: int = 5,
) -> list[BaseTool]:
    """Tools an agent uses to manage its long-term memory of a scope: `remember` (add; facts
    extracted and reconciled unless `infer=False`), `recall` (search, `top_k` results with
    their ids) and `forget` (delete one memory of this scope by id)."""
    backend = Backend(memory, user_id=user_id, agent_id=agent_id, run_id=run_id)

    def remember(text: str) -> str:
        return _stored(backend.call("add", **backend.add_args(text, infer=infer)))

    async def aremember(text: str) -> str:
        return _stored(await backend.acall("add", **backend.add_args(text, infer=infer)))

    def recall(query: str) -> str:
        return _found(backend.search(query, top_k=top_k))

    async def arecall(query: str) -> str:
        return _found(await backend.asearch(query, top_k=top_k))

    def forget(memory_id: str) -> str:
        item = backend.get(memory_id) if _is_id(memory_id) else None
        if item is None or not backend.in_scope(item):
            return _no_such(memory_id)
        backend.call("delete", memory_id)
        return f"Forgot: {item['memory']}"

    async def aforget(memory_id: str) -> str:
        item = await backend.aget(memory_id) if _is_id(memory_id) else None
        if item is None or not backend.in_scope(item):
            return _no_such(memory_id)
        await backend.acall("delete", memory_id)
        return f"Forgot: {item['memory']}"

    return [
        StructuredTool.from_function(
            func=remember, coroutine=aremember, name="remember", args_schema=_Remember,
            description="Save something worth knowing in later conversations: a fact about the "
            "user, a preference, a decision, an event. Related memories are updated, not "
            "duplicated.",
        ),
        StructuredTool.from_function(
            func=recall, coroutine=arecall, name="recall", args_schema=_Recall,
            description="Search long-term memory for what is known about a topic, before "
            "answering a question that may depend on it. Returns the best matches with their "
            "ids.",
        ),
        StructuredTool.from_function(
            func=forget, coroutine=aforget, name="forget", args_schema=_Forget,
            description="Delete one memory that is wrong or that the user asked to forget, "
            "by the id `recall` showed.",
        ),
    ]  # fmt: skip


def _stored(answer: Mapping[str, Any]) -> str:
    """What an add changed, and why nothing did (the answer's warnings) when so."""
    changes = [f"{r['event']}: {r['memory']}" for r in answer.get("results", []) if "memory" in r]
    if changes:
        return "Memory updated.\n" + "\n".join(changes)
    return "\n".join(["Nothing new to remember.", *answer.get("warnings", [])])


def _found(items: list[dict[str, Any]]) -> str:
    if not items:
        return "No memories match."
    return "\n".join(f"- {i['memory']} (id: {i['id']}, score: {i.get('score', 0):.2f})" for i in items)  # fmt: skip # noqa: E501


def _is_id(memory_id: str) -> bool:
    try:
        uuid.UUID(memory_id.strip())
    except (ValueError, AttributeError):
        return False
    return True


def _no_such(memory_id: str) -> str:
    return f"No memory with id {memory_id!r} in this scope: use recall to find the id."
