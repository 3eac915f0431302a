"""An OpenAI-compatible chat proxy with memory: `POST /v1/chat/completions` (and `GET /v1/models`).

Point any OpenAI client at `engram serve` (`base_url="http://host:8000/v1"`, `api_key=<an Engram
key>`) and name whose memory it is (`user_id` / `agent_id` / `run_id` / `app_id` in the body, as
mem0's proxy takes them, or `X-User-Id` / `X-Agent-Id` / `X-Run-Id` / `X-App-Id` headers). Each
request then:

1. recalls the memories most relevant to the latest user message (`limit`, default 10;
   `filters` narrows them) and hands them to the model as a system message;
2. forwards the request to the upstream LLM, unchanged otherwise, and returns its answer as the
   upstream gave it: status, body, and the server-sent events of `stream: true`;
3. once the answer is complete, queues an async add of the turn (the new user messages and the
   answer), with `metadata`; the event id is in the `X-Engram-Event-Id` header of a
   non-streamed answer, and in the project's events either way.

The upstream is `ENGRAM_UPSTREAM_URL` (+ `ENGRAM_UPSTREAM_API_KEY`), else the project's configured
OpenAI-compatible LLM. Upstream errors pass through with their status and body.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from engram.errors import NetworkError, ValidationError
from engram.providers.llm.openai import OpenAILLM
from engram.server.platform import SCOPE, add_kwargs, queue_add, with_scope
from engram.server.state import Reader, State, Writer, memory_for, state_of

router = APIRouter()
PATHS = frozenset({"/v1/chat/completions", "/v1/models"})

MEMORY_KEYS = {*SCOPE, "metadata", "filters", "limit"}
HEADERS = {name: f"x-{name.removesuffix('_id')}-id" for name in SCOPE}
DEFAULT_LIMIT = 10
# Upstream headers not to copy onto the answer (the server frames its own).
HOP_BY_HOP = {"content-length", "transfer-encoding", "connection", "keep-alive", "content-encoding"}

SYSTEM_HEADER = (
    "Memories of earlier conversations (from Engram), most relevant first. Use them when they "
    "help answer; they may be out of date, and the conversation itself takes precedence."
)


class Upstream:
    """Where chat requests go: a base URL (`.../v1`) and its headers."""

    def __init__(self, base_url: str, headers: Mapping[str, str]) -> None:
        self.base_url, self.headers = base_url.rstrip("/"), dict(headers)


def upstream_of(state: State, memory: Any) -> Upstream | None:
    settings = state.settings
    if settings.upstream_url:
        key = settings.upstream_api_key
        return Upstream(settings.upstream_url, {"Authorization": f"Bearer {key}"} if key else {})
    llm = getattr(memory, "llm", None)
    endpoint = llm.openai_endpoint() if isinstance(llm, OpenAILLM) else None
    if endpoint is None:
        return None  # none, or not OpenAI's wire format (Anthropic, Azure's URLs)
    return Upstream(*endpoint)


def openai_error(body: Mapping[str, Any]) -> dict[str, Any]:
    """An error answer in OpenAI's shape, `{"error": {"message", "type", "code"}}`."""
    detail = body.get("detail")
    message = detail if isinstance(detail, str) else json.dumps(detail)
    code = body.get("code", "error")
    return {"error": {"message": message, "type": code, "code": code, "param": None}}


def _no_upstream() -> JSONResponse:
    return JSONResponse(openai_error({
        "detail": "no upstream LLM for the chat proxy: set ENGRAM_UPSTREAM_URL (and "
                  "ENGRAM_UPSTREAM_API_KEY), or configure an OpenAI-compatible llm",
        "code": "no_upstream"}), status_code=501,
    )  # fmt: skip


def _client(request: Request) -> httpx.AsyncClient:
    """One connection pool per server process, closed with the app (see `app._stop`)."""
    state = state_of(request)
    if state.http is None:
        state.http = httpx.AsyncClient(timeout=httpx.Timeout(600.0, connect=10.0))
    return state.http


def _text(content: Any) -> str:
    """A message's text: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def _parse(body: Any, headers: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The upstream's request (Engram's keys taken out) and those keys, checked."""
    if not isinstance(body, dict):
        raise ValidationError("the request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValidationError("messages must be a non-empty list")
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise ValidationError("each message must be an object with a role")
    ours = {k: body[k] for k in MEMORY_KEYS if k in body}
    for name, header in HEADERS.items():
        given = headers.get(header)
        if given is None:
            continue
        if name in ours and ours[name] != given:
            raise ValidationError(f"{name} differs between the body and the {header} header")
        ours[name] = given
    for name in SCOPE:
        if name in ours and (not isinstance(ours[name], str) or not ours[name].strip()):
            raise ValidationError(f"{name} must be a non-empty string")
    if not ours.keys() & {"user_id", "agent_id", "run_id"}:
        raise ValidationError(
            "name whose memory this is: user_id, agent_id or run_id in the body, or an "
            "X-User-Id / X-Agent-Id / X-Run-Id header"
        )
    limit = ours.get("limit", DEFAULT_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValidationError("limit must be a non-negative integer (0: recall nothing)")
    if "metadata" in ours and not isinstance(ours["metadata"], dict):
        raise ValidationError("metadata must be an object")
    forwarded = {k: v for k, v in body.items() if k not in MEMORY_KEYS}
    return forwarded, ours


def _query(messages: Sequence[dict[str, Any]]) -> str:
    """What to recall for: the latest user message, with the one before it when it is short
    ("yes, book it")."""
    users = [i for i, m in enumerate(messages) if m["role"] == "user"]
    if not users:
        return ""
    last = users[-1]
    text = _text(messages[last].get("content")).strip()
    if len(text.split()) < 4 and last > 0:
        text = f"{_text(messages[last - 1].get('content')).strip()} {text}".strip()
    return text


def _with_memories(messages: list[dict[str, Any]], found: Sequence[Mapping[str, Any]]) -> list[
    dict[str, Any]
]:  # fmt: skip
    """The messages with a system message of the memories after the leading system messages."""
    if not found:
        return messages
    lines = [SYSTEM_HEADER]
    for item in found:
        when = str(item.get("created_at") or "")[:10]
        lines.append(f"- {item['memory']}" + (f" ({when})" if when else ""))
    at = next((i for i, m in enumerate(messages) if m["role"] != "system"), len(messages))
    return [*messages[:at], {"role": "system", "content": "\n".join(lines)}, *messages[at:]]


def _turn(messages: Sequence[dict[str, Any]], answer: str | None) -> list[dict[str, Any]]:
    """What to remember of this call: the messages since the last assistant message (the new
    user turn) and the answer."""
    last_assistant = max((i for i, m in enumerate(messages) if m["role"] == "assistant"),
                         default=-1)  # fmt: skip
    turn = [
        {k: v for k, v in m.items() if k in ("role", "content", "name")}
        for m in messages[last_assistant + 1 :]
        if m["role"] in ("user", "assistant") and _text(m.get("content")).strip()
    ]
    if answer:
        turn.append({"role": "assistant", "content": answer})
    return turn


async def _remember(
    request: Request, who: Any, ours: dict[str, Any], turn: list[Any]
) -> str | None:
    if not any(m["role"] == "user" for m in turn):
        return None
    state = state_of(request)
    body = {"messages": turn, **{k: ours[k] for k in (*SCOPE, "metadata") if k in ours}}
    return await queue_add(state, who, await add_kwargs(state, who, body))


def _passed_headers(answer: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}


@router.post("/v1/chat/completions")
async def chat_completions(request: Request, who: Writer) -> Response:
    """An OpenAI chat completion with memory (see the module's docstring)."""
    try:
        raw = await request.json()
    except ValueError:
        raise ValidationError("the request body must be JSON") from None
    forwarded, ours = _parse(raw, request.headers)
    memory = await memory_for(request, who)
    upstream = upstream_of(state_of(request), memory)
    if upstream is None:
        return _no_upstream()
    messages: list[dict[str, Any]] = forwarded["messages"]
    query, found = _query(messages), []
    if query and ours.get("limit", DEFAULT_LIMIT) > 0:
        scope = {k: ours[k] for k in SCOPE if k in ours}
        where = with_scope(ours.get("filters"), scope)
        result = await memory.search(query, filters=where, top_k=ours.get("limit", DEFAULT_LIMIT))
        found = list(result["results"])
    forwarded["messages"] = _with_memories(messages, found)
    client = _client(request)
    outgoing = client.build_request(
        "POST", f"{upstream.base_url}/chat/completions", json=forwarded,
        headers={**upstream.headers, "Accept": request.headers.get("accept", "application/json")},
    )  # fmt: skip
    try:
        answer = await client.send(outgoing, stream=True)
    except httpx.HTTPError as exc:
        raise NetworkError(f"the upstream LLM did not answer: {exc}") from exc
    recalled = {"X-Engram-Memories": str(len(found))}
    streamed = answer.headers.get("content-type", "").startswith("text/event-stream")
    if answer.status_code != 200 or not streamed:
        try:
            content = await answer.aread()
        finally:
            await answer.aclose()
        headers = {**_passed_headers(answer), **recalled}
        if answer.status_code == 200:
            event_id = await _remember(request, who, ours, _turn(messages, _answer_of(content)))
            if event_id:
                headers["X-Engram-Event-Id"] = event_id
        return Response(content, status_code=answer.status_code, headers=headers)

    async def remember(text: str | None) -> None:
        await _remember(request, who, ours, _turn(messages, text))

    relay = _Relay(remember, answer)
    return StreamingResponse(
        relay.chunks(), status_code=200, headers={**_passed_headers(answer), **recalled},
        background=BackgroundTask(relay.after),
    )  # fmt: skip


def _answer_of(content: bytes) -> str | None:
    try:
        data = json.loads(content)
        return str(data["choices"][0]["message"]["content"] or "") or None
    except (ValueError, KeyError, IndexError, TypeError):
        return None


class _Relay:
    """The upstream's events, passed on as they come; the answer they spell is remembered
    after the response (a background task: the client may hang up as soon as it has read
    `[DONE]`), and only when the stream reached `[DONE]`."""

    def __init__(self, remember: Callable[[str | None], Awaitable[Any]],
                 answer: httpx.Response) -> None:  # fmt: skip
        self.remember, self.answer = remember, answer
        self.parts: list[str] = []
        self.done = False

    async def chunks(self) -> AsyncIterator[bytes]:
        pending = b""
        try:
            async for chunk in self.answer.aiter_raw():
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self.done = _read_event(line.strip(), self.parts) or self.done
                yield chunk
        finally:
            await self.answer.aclose()

    async def after(self) -> None:
        if self.done:
            await self.remember("".join(self.parts) or None)


def _read_event(line: bytes, parts: list[str]) -> bool:
    """One `data:` line of the stream: its content delta appended; True at `[DONE]`."""
    if not line.startswith(b"data:"):
        return False
    data = line[5:].strip()
    if data == b"[DONE]":
        return True
    try:
        delta = json.loads(data)["choices"][0]["delta"].get("content")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return False
    if isinstance(delta, str):
        parts.append(delta)
    return False


@router.get("/v1/models")
async def models(request: Request, who: Reader) -> Response:
    """The upstream's models (what OpenAI clients list before they chat)."""
    upstream = upstream_of(state_of(request), await memory_for(request, who))
    if upstream is None:
        return _no_upstream()
    try:
        answer = await _client(request).get(f"{upstream.base_url}/models", headers=upstream.headers)
    except httpx.HTTPError as exc:
        raise NetworkError(f"the upstream LLM did not answer: {exc}") from exc
    return Response(answer.content, status_code=answer.status_code,
                    headers=_passed_headers(answer))  # fmt: skip
