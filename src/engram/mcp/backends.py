"""What the MCP tools act on: the embedded library store (`LocalBackend`, for `engram mcp` over
stdio) or a server's REST API (`RestBackend`: the `/mcp` mount of `engram serve` calls its own app
in-process with the caller's key, and `engram mcp --url` calls a remote server).

Both answer with the REST API's shapes, so a tool's result reads the same wherever it runs.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from engram.errors import EngramError, NotFoundError, ValidationError
from engram.memory import AsyncMemory

SCOPE = ("user_id", "agent_id", "app_id", "run_id")


class BackendError(Exception):
    """A failed call, with the REST API's error code (`validation_error`, `not_found`, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class Backend(Protocol):
    async def add(
        self,
        messages: list[dict[str, Any]],
        ids: Mapping[str, str],
        options: Mapping[str, Any],
        wait: bool,
    ) -> dict[str, Any]: ...

    async def search(
        self, query: str, filters: dict[str, Any], options: Mapping[str, Any]
    ) -> dict[str, Any]: ...

    async def list_memories(
        self, filters: dict[str, Any], page: int, page_size: int, options: Mapping[str, Any]
    ) -> dict[str, Any]: ...

    async def get(self, memory_id: str) -> dict[str, Any]: ...

    async def update(self, memory_id: str, text: str) -> dict[str, Any]: ...

    async def delete(self, memory_id: str) -> dict[str, Any]: ...

    async def history(self, memory_id: str) -> list[dict[str, Any]]: ...

    async def delete_all(self, ids: Mapping[str, str]) -> dict[str, Any]: ...

    async def delete_entity(self, kind: str, name: str) -> dict[str, Any]: ...

    async def entities(self) -> dict[str, Any]: ...

    async def events(self, page: int, page_size: int) -> dict[str, Any]: ...

    async def event(self, event_id: str) -> dict[str, Any]: ...


def _exact(ids: Mapping[str, str]) -> dict[str, Any]:
    """Ids as a filter that matches each one as a value, never as filter syntax ("*")."""
    parts = [{name: {"in": [value]}} for name, value in ids.items()]
    return parts[0] if len(parts) == 1 else {"AND": parts}


class LocalBackend:
    """The library's `AsyncMemory`. Adds run at once (there is no queue without a server), and
    each is recorded as an event of this process, so `list_events` and `get_event_status`
    report what this session added."""

    def __init__(self, memory: AsyncMemory) -> None:
        self.memory = memory
        self._events: dict[str, dict[str, Any]] = {}

    async def add(
        self,
        messages: list[dict[str, Any]],
        ids: Mapping[str, str],
        options: Mapping[str, Any],
        wait: bool,
    ) -> dict[str, Any]:
        event_id = str(uuid.uuid4())
        event: dict[str, Any] = {
            "id": event_id, "event_type": "ADD", "status": "RUNNING",
            "payload": {"messages": messages, **ids, **options},
            "created_at": _now(), "updated_at": None, "results": None, "error": None,
        }  # fmt: skip
        self._events[event_id] = event
        try:
            kwargs: dict[str, Any] = {**ids, **options}
            result = await self.memory.add(messages, **kwargs)
        except EngramError as exc:
            event.update(status="FAILED", error=str(exc), updated_at=_now())
            raise
        event.update(status="SUCCEEDED", results=result["results"], updated_at=_now())
        return {**result, "event_id": event_id, "status": "SUCCEEDED"}

    async def search(
        self, query: str, filters: dict[str, Any], options: Mapping[str, Any]
    ) -> dict[str, Any]:
        return dict(await self.memory.search(query, filters=filters, **options))

    async def list_memories(
        self, filters: dict[str, Any], page: int, page_size: int, options: Mapping[str, Any]
    ) -> dict[str, Any]:
        found = await self.memory.get_all(
            filters=filters, page=page, page_size=page_size, **options
        )
        out: dict[str, Any] = {
            "count": found["total"], "page": page, "page_size": page_size,
            "next": page + 1 if page * page_size < found["total"] else None,
            "previous": page - 1 if page > 1 else None, "results": found["results"],
        }  # fmt: skip
        if "relations" in found:
            out["relations"] = found["relations"]
        return out

    async def get(self, memory_id: str) -> dict[str, Any]:
        found = await self.memory.get(memory_id)
        if found is None:
            raise NotFoundError(f"memory {memory_id} not found")
        return dict(found)

    async def update(self, memory_id: str, text: str) -> dict[str, Any]:
        await self.memory.update(memory_id, text=text)
        return await self.get(memory_id)

    async def delete(self, memory_id: str) -> dict[str, Any]:
        return dict(await self.memory.delete(memory_id))

    async def history(self, memory_id: str) -> list[dict[str, Any]]:
        found = [dict(h) for h in await self.memory.history(memory_id)]
        if not found:
            raise NotFoundError(f"memory {memory_id} not found")
        return found

    async def delete_all(self, ids: Mapping[str, str]) -> dict[str, Any]:
        return dict(await self.memory.delete_all(filters=_exact(ids)))

    async def delete_entity(self, kind: str, name: str) -> dict[str, Any]:
        deleted = await self.memory.delete_all(filters=_exact({f"{kind}_id": name}))
        return {"message": "Entity deleted successfully.",
                "deleted_count": deleted["deleted_count"]}  # fmt: skip

    async def entities(self) -> dict[str, Any]:
        return {"results": await self.memory.entities()}

    async def events(self, page: int, page_size: int) -> dict[str, Any]:
        newest = sorted(self._events.values(), key=lambda e: e["created_at"], reverse=True)
        start = (page - 1) * page_size
        return {"count": len(newest), "page": page, "page_size": page_size,
                "results": newest[start : start + page_size]}  # fmt: skip

    async def event(self, event_id: str) -> dict[str, Any]:
        found = self._events.get(event_id)
        if found is None:
            raise NotFoundError(f"event {event_id} not found (events are kept for this session)")
        return found


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class RestBackend:
    """A server's Platform REST API, through `client` (its base URL and API key set)."""

    def __init__(self, client: httpx.AsyncClient, headers: Mapping[str, str] | None = None) -> None:
        self.client, self.headers = client, dict(headers or {})

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            answer = await self.client.request(method, path, headers=self.headers, **kwargs)
        except httpx.HTTPError as exc:
            raise BackendError("network_error", f"the memory server did not answer: {exc}") from exc
        try:
            body = answer.json()
        except ValueError:
            body = {"detail": answer.text}
        if answer.status_code >= 400:
            detail = body.get("detail", body) if isinstance(body, dict) else body
            code = body.get("code", "http_error") if isinstance(body, dict) else "http_error"
            raise BackendError(code, f"{detail} (HTTP {answer.status_code})")
        return body

    async def add(
        self,
        messages: list[dict[str, Any]],
        ids: Mapping[str, str],
        options: Mapping[str, Any],
        wait: bool,
    ) -> dict[str, Any]:
        body = {"messages": messages, **ids, **options, "async_mode": not wait}
        found: dict[str, Any] = await self._call("POST", "/v3/memories/add/", json=body)
        return found

    async def search(
        self, query: str, filters: dict[str, Any], options: Mapping[str, Any]
    ) -> dict[str, Any]:
        body = {"query": query, "filters": filters, **options}
        found: dict[str, Any] = await self._call("POST", "/v3/memories/search/", json=body)
        return found

    async def list_memories(
        self, filters: dict[str, Any], page: int, page_size: int, options: Mapping[str, Any]
    ) -> dict[str, Any]:
        body = {"filters": filters, "page": page, "page_size": page_size, **options}
        found: dict[str, Any] = await self._call("POST", "/v3/memories/", json=body)
        return {**found, "page": page, "page_size": page_size}

    async def get(self, memory_id: str) -> dict[str, Any]:
        found: dict[str, Any] = await self._call("GET", f"/v1/memories/{_segment(memory_id)}/")
        return found

    async def update(self, memory_id: str, text: str) -> dict[str, Any]:
        path = f"/v1/memories/{_segment(memory_id)}/"
        found: dict[str, Any] = await self._call("PUT", path, json={"text": text})
        return found

    async def delete(self, memory_id: str) -> dict[str, Any]:
        found: dict[str, Any] = await self._call("DELETE", f"/v1/memories/{_segment(memory_id)}/")
        return found

    async def history(self, memory_id: str) -> list[dict[str, Any]]:
        path = f"/v1/memories/{_segment(memory_id)}/history/"
        found: list[dict[str, Any]] = await self._call("GET", path)
        return found

    async def delete_all(self, ids: Mapping[str, str]) -> dict[str, Any]:
        found: dict[str, Any] = await self._call("DELETE", "/v1/memories/", params=dict(ids))
        return found

    async def delete_entity(self, kind: str, name: str) -> dict[str, Any]:
        path = f"/v2/entities/{kind}/{_segment(name)}/"
        found: dict[str, Any] = await self._call("DELETE", path)
        return found

    async def entities(self) -> dict[str, Any]:
        found: dict[str, Any] = await self._call("GET", "/v1/entities/")
        return found

    async def events(self, page: int, page_size: int) -> dict[str, Any]:
        params = {"page": page, "page_size": page_size}
        found: dict[str, Any] = await self._call("GET", "/v1/events/", params=params)
        return found

    async def event(self, event_id: str) -> dict[str, Any]:
        found: dict[str, Any] = await self._call("GET", f"/v1/event/{_segment(event_id)}/")
        return found


def _segment(value: str) -> str:
    """An id as one path segment: a "/" or ".." in it must not reach another route."""
    if not value or "/" in value or value in (".", ".."):
        raise ValidationError(f"not a valid id: {value!r}")
    return quote(value, safe="")
