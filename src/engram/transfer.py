"""Export and import memories as JSON Lines, losslessly.

Each line is `{"type": "memory", ...every field}` or `{"type": "history", ...}`; memories come
oldest first and history in the order it was written. Importing an export into an empty store and
exporting again gives the same lines. Embeddings are not exported: the importing store computes
them with its own embedder.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from engram.core.filters import Node
from engram.errors import ValidationError
from engram.memory import AsyncMemory
from engram.store.base import HistoryRecord, Insert, MemoryRecord

PAGE = 1000
_MEMORY_FIELDS = {f.name for f in dataclasses.fields(MemoryRecord)}
_HISTORY_FIELDS = {f.name for f in dataclasses.fields(HistoryRecord)}


async def export_lines(memory: AsyncMemory, where: Node | None) -> AsyncIterator[str]:
    """JSON lines for every memory matching `where` (all memories when `None`) and its history."""
    ctx = await memory._open()
    page = await ctx.store.list_memories(where, today="", show_expired=True)
    records = list(reversed(page.records))  # oldest first
    for record in records:
        yield json.dumps({"type": "memory", **dataclasses.asdict(record)}, ensure_ascii=False)
    for start in range(0, len(records), PAGE):
        ids = [r.id for r in records[start : start + PAGE]]
        for entry in await ctx.store.history_many(ids):
            yield json.dumps({"type": "history", **dataclasses.asdict(entry)}, ensure_ascii=False)


async def import_lines(memory: AsyncMemory, lines: Iterable[str]) -> dict[str, int]:
    """Import exported lines in one transaction; returns how many memories and history rows."""
    records: list[MemoryRecord] = []
    history: list[HistoryRecord] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError as exc:
            raise ValidationError(f"line {number}: not JSON: {exc}") from exc
        kind = data.pop("type", None) if isinstance(data, dict) else None
        try:
            if kind == "memory":
                records.append(MemoryRecord(**_fields(data, _MEMORY_FIELDS, number)))
            elif kind == "history":
                history.append(HistoryRecord(**_fields(data, _HISTORY_FIELDS, number)))
            else:
                raise ValidationError(f"line {number}: 'type' must be 'memory' or 'history'")
        except TypeError as exc:
            raise ValidationError(f"line {number}: {exc}") from exc
    ctx = await memory._open()
    inserts = []
    if records:
        vectors = await ctx.embedder.embed([r.memory for r in records])
        inserts = [Insert(r, vectors[i]) for i, r in enumerate(records)]
    await ctx.store.restore(inserts, history)
    return {"memories": len(records), "history": len(history)}


def _fields(data: Mapping[str, Any], allowed: set[str], number: int) -> dict[str, Any]:
    unknown = set(data) - allowed
    if unknown:
        raise ValidationError(f"line {number}: unknown fields {', '.join(sorted(unknown))}")
    return dict(data)
