"""Identifiers: scope ids are validated, memory ids are UUIDs, texts are hashed."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from engram.errors import ValidationError

MAX_ID_LENGTH = 255


def new_id() -> str:
    return str(uuid.uuid4())


def text_hash(text: str) -> str:
    """mem0's memory hash: the MD5 hex digest of the memory text."""
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def clean_scope_id(name: str, value: Any) -> str | None:
    """Validate a user/agent/run/app id: a non-empty string without whitespace, trimmed."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a string, got {type(value).__name__}")
    text = value.strip()
    if not text:
        raise ValidationError(f"{name} must not be empty")
    if any(c.isspace() for c in text) or not text.isprintable():
        raise ValidationError(f"{name} must not contain whitespace or control characters")
    if len(text) > MAX_ID_LENGTH:
        raise ValidationError(f"{name} is longer than {MAX_ID_LENGTH} characters")
    return text


def clean_memory_id(value: Any) -> str:
    """Validate a memory id (a UUID) and return its canonical lowercase form."""
    if not isinstance(value, str):
        raise ValidationError(f"memory_id must be a string, got {type(value).__name__}")
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        raise ValidationError(f"memory_id {value!r} is not a valid UUID") from None
