"""Normalize what `add()` receives (a string, one message, or a list) into typed messages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engram.errors import ValidationError

ROLES = frozenset({"user", "assistant", "system", "tool"})


@dataclass(frozen=True, slots=True)
class Message:
    role: str
    content: str
    name: str | None = None


def normalize_messages(messages: Any) -> list[Message]:
    """Accept mem0's forms: `"text"`, `{"role", "content", "name"?}` or a list of those."""
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
    result = [_message(index, item) for index, item in enumerate(items)]
    if not result:
        raise ValidationError("messages must not be empty")
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
    return Message(role, _content_text(index, item["content"]), name.strip() if name else None)


def _content_text(index: int, content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = [content] if isinstance(content, Mapping) else content
    if not isinstance(parts, Sequence) or isinstance(parts, bytes):
        raise ValidationError(f"messages[{index}].content must be a string or a list of parts")
    texts = []
    for part in parts:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, Mapping) and part.get("type") == "text":
            texts.append(str(part.get("text", "")))
        else:
            kind = part.get("type") if isinstance(part, Mapping) else type(part).__name__
            raise ValidationError(
                f"messages[{index}].content part of type {kind!r} needs a vision or document "
                "capable LLM; configure one with Memory.from_config({'llm': ...})"
            )
    return "\n".join(texts)
