"""Normalize what `add()` receives (a string, one message, or a list) into typed messages."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engram.errors import ValidationError
from engram.limits import DEFAULT_LIMITS, Limits

ROLES = frozenset({"user", "assistant", "system", "tool"})


PART_TYPES = {"image_url": "image", "mdx_url": "mdx", "txt_url": "txt", "pdf_url": "pdf"}


@dataclass(frozen=True, slots=True)
class Part:
    """A non-text part of a message: an image, or a document to read as text."""

    kind: str  # image, mdx, txt or pdf
    url: str  # http(s) or data: URL


@dataclass(frozen=True, slots=True)
class Message:
    role: str
    content: str
    name: str | None = None
    parts: tuple[Part, ...] = ()


def one_speaker(messages: Iterable[Message]) -> str | None:
    """The name of the one person speaking in the messages (not the assistant), if they all
    carry the same one; None when none is named or several speak."""
    names = {m.name for m in messages if m.role != "assistant"}
    return names.pop() if len(names) == 1 else None


def normalize_messages(messages: Any, limits: Limits = DEFAULT_LIMITS) -> list[Message]:
    """Accept mem0's forms: `"text"`, `{"role", "content", "name"?}` or a list of those, within
    the limits' number of messages and characters of each."""
    if isinstance(messages, str):
        items: Sequence[Any] = [{"role": "user", "content": messages}]
    elif isinstance(messages, Mapping):
        items = [messages]
    elif isinstance(messages, Sequence) and not isinstance(messages, bytes):
        items = messages
    else:
        raise ValidationError(
            "messages must be a string, a message dict or a list of message dicts, "
            f"got {type(messages).__name__}"
        )
    limits.message_count(len(items))
    result = [_message(index, item) for index, item in enumerate(items)]
    if not result:
        raise ValidationError("messages must not be empty")
    for index, message in enumerate(result):
        limits.text(message.content, f"messages[{index}]")
    limits.count("parts", sum(len(message.parts) for message in result))
    return result


def _message(index: int, item: Any) -> Message:
    if isinstance(item, str):
        return Message("user", item)
    if not isinstance(item, Mapping):
        raise ValidationError(f"messages[{index}] must be a dict, got {type(item).__name__}")
    role = item.get("role", "user")
    if role not in ROLES:
        raise ValidationError(
            f"messages[{index}].role must be one of {', '.join(sorted(ROLES))}, got {role!r}"
        )
    if "content" not in item:
        raise ValidationError(f"messages[{index}] has no 'content'")
    name = item.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ValidationError(f"messages[{index}].name must be a non-empty string")
    text, parts = _content(index, item["content"])
    return Message(role, text, name.strip() if name else None, parts)


def _content(index: int, content: Any) -> tuple[str, tuple[Part, ...]]:
    """Text and parts of mem0's content forms: a string, one part dict, or a list of parts."""
    if isinstance(content, str):
        return content, ()
    items = [content] if isinstance(content, Mapping) else content
    if not isinstance(items, Sequence) or isinstance(items, bytes):
        raise ValidationError(f"messages[{index}].content must be a string or a list of parts")
    texts: list[str] = []
    parts: list[Part] = []
    for item in items:
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, Mapping) and item.get("type") == "text":
            texts.append(str(item.get("text", "")))
        elif isinstance(item, Mapping) and item.get("type") in PART_TYPES:
            parts.append(Part(PART_TYPES[item["type"]], _part_url(index, item)))
        else:
            kind = item.get("type") if isinstance(item, Mapping) else type(item).__name__
            raise ValidationError(
                f"messages[{index}].content has a part of unknown type {kind!r}; supported: "
                f"text, {', '.join(PART_TYPES)}"
            )
    return "\n".join(texts), tuple(parts)


def _part_url(index: int, item: Mapping[str, Any]) -> str:
    value = item.get(item["type"])
    url = value.get("url") if isinstance(value, Mapping) else value
    if not isinstance(url, str) or not url.startswith(("http://", "https://", "data:")):
        raise ValidationError(
            f"messages[{index}]: a {item['type']} part needs an http(s) or data: URL, "
            f"as {{'type': '{item['type']}', '{item['type']}': {{'url': ...}}}}"
        )
    return url
