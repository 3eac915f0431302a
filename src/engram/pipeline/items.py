"""mem0's return shapes, built from store records."""

from __future__ import annotations

from engram.store.base import HistoryRecord, MemoryRecord
from engram.types import HistoryItem, MemoryItem

_OPTIONAL = ("user_id", "agent_id", "run_id", "app_id", "actor_id", "role", "memory_type")


def memory_item(record: MemoryRecord) -> MemoryItem:
    item: MemoryItem = {
        "id": record.id,
        "memory": record.memory,
        "hash": record.hash,
        "metadata": dict(record.metadata),
        "categories": list(record.categories),
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }
    for name in _OPTIONAL:
        value = getattr(record, name)
        if value is not None:
            item[name] = value  # type: ignore[literal-required]  # the optional str fields
    if record.expiration_date is not None:
        item["expiration_date"] = record.expiration_date
    if record.immutable:
        item["immutable"] = True
    return item


def history_item(record: HistoryRecord) -> HistoryItem:
    return {
        "id": record.id,
        "memory_id": record.memory_id,
        "old_memory": record.old_memory,
        "new_memory": record.new_memory,
        "event": record.event,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "is_deleted": record.is_deleted,
        "actor_id": record.actor_id,
        "role": record.role,
        "cause": record.cause,
    }
