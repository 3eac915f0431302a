"""Export and import a store as JSON Lines, losslessly.

Each line is `{"type": ..., ...fields}`: every `memory` (oldest first) with all its fields, then
the rows attached to them, each kind in the order it was written: `history`, graph `entity` and
`relation` (with its validity window; entities named within their scope), `profile` facts,
`profile_change`, `feedback`. Exporting everything (no filter) also carries the history, ended
relations and profile changes of deleted memories; a filtered export carries the rows of the
memories it holds. Importing an export into an empty store and exporting again gives the same
lines. Embeddings are not exported: the importing store computes them (memories' texts, entities'
names) with its own embedder.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from engram.core.filters import Node
from engram.core.ids import clean_memory_id, clean_scope_id
from engram.core.timeutil import normalize_date, normalize_timestamp
from engram.errors import ValidationError
from engram.memory import AsyncMemory
from engram.store.base import ATTACHED_FIELDS, Attached, HistoryRecord, Insert, MemoryRecord

_MEMORY_FIELDS = {f.name for f in dataclasses.fields(MemoryRecord)}
_HISTORY_FIELDS = {f.name for f in dataclasses.fields(HistoryRecord)}


async def export_lines(memory: AsyncMemory, where: Node | None) -> AsyncIterator[str]:
    """JSON lines for every memory matching `where` (the whole store when `None`) and the rows
    attached to them."""
    ctx = await memory._open()
    records, attached = await ctx.store.export(where)
    for record in records:
        yield _line("memory", dataclasses.asdict(record))
    for entry in attached.history:
        yield _line("history", dataclasses.asdict(entry))
    for kind, rows in attached.rows.items():
        for row in rows:
            yield _line(kind, row)


def _line(kind: str, fields: Mapping[str, Any]) -> str:
    return json.dumps({"type": kind, **fields}, ensure_ascii=False)


async def import_lines(memory: AsyncMemory, lines: Iterable[str]) -> dict[str, int]:
    """Import exported lines in one transaction; returns how many rows of each kind."""
    records: list[MemoryRecord] = []
    attached = Attached()
    kinds = ", ".join(repr(k) for k in ("memory", "history", *ATTACHED_FIELDS))
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
                fields = _fields(data, _MEMORY_FIELDS, number)
                _check_memory(fields)
                records.append(MemoryRecord(**fields))
            elif kind == "history":
                fields = _fields(data, _HISTORY_FIELDS, number)
                _check_history(fields)
                attached.history.append(HistoryRecord(**fields))
            elif kind in ATTACHED_FIELDS:
                attached.rows[kind].append(_row(kind, data, number))
            else:
                raise ValidationError(f"line {number}: 'type' must be one of {kinds}")
        except (TypeError, ValidationError) as exc:
            raise ValidationError(f"line {number}: {exc}") from exc
    ctx = await memory._open()
    inserts = []
    if records:
        vectors = await ctx.embedder.embed([r.memory for r in records])
        inserts = [Insert(r, vectors[i]) for i, r in enumerate(records)]
    if attached.rows["entity"]:
        names = [row["name"] for row in attached.rows["entity"]]
        attached.entity_vectors = list(await ctx.embedder.embed(names))
    await ctx.store.restore(inserts, attached)
    counts = {"memories": len(records), "history": len(attached.history)}
    counts.update({_PLURAL[kind]: len(rows) for kind, rows in attached.rows.items()})
    return counts


_PLURAL = {
    "entity": "entities",
    "relation": "relations",
    "profile": "profile_facts",
    "profile_change": "profile_changes",
    "feedback": "feedback",
}
# Fields that must hold text (the others may be null); a feedback `value` is a number in [-1, 1].
_TEXT = {"name", "created_at", "source", "relationship", "target", "valid_at", "key", "value",
         "updated_at", "changed_at"}  # fmt: skip


def _row(kind: str, data: Mapping[str, Any], number: int) -> dict[str, Any]:
    names = ATTACHED_FIELDS[kind]
    row = _fields(data, set(names), number)
    missing = [n for n in names if n not in row]
    if missing:
        raise ValidationError(f"line {number}: {kind} lacks {', '.join(missing)}")
    for name in names:
        value = row[name]
        if kind == "feedback" and name == "value":
            number_ok = isinstance(value, int | float) and not isinstance(value, bool)
            if not number_ok or not -1 <= value <= 1:
                raise ValidationError(f"line {number}: feedback 'value' must be in [-1, 1]")
        elif value is None and name not in _TEXT:
            continue
        elif not isinstance(value, str) or (name in _TEXT and not value.strip()):
            raise ValidationError(f"line {number}: {kind} {name!r} must be a non-empty string")
    return row


def _check_memory(row: Mapping[str, Any]) -> None:
    """A memory line holds what a store can hold: a UUID, a text, valid scope ids, times and
    fields of their types (kept as written: an import round-trips). Not the call limits: a
    store moved whole may hold texts from before them."""
    if clean_memory_id(row.get("id")) != row["id"]:
        raise ValidationError(f"memory id {row['id']!r} is not a UUID in canonical form")
    text = row.get("memory")
    if not isinstance(text, str) or not text.strip():
        raise ValidationError("a memory's text must be a non-empty string")
    for name in ("user_id", "agent_id", "run_id", "app_id"):
        if clean_scope_id(name, row.get(name)) != row.get(name):
            raise ValidationError(f"{name} {row.get(name)!r} is not a clean id")
    actor = row.get("actor_id")  # a speaker's name, as a message gave it ("John Smith")
    if actor is not None and (not isinstance(actor, str) or not actor.strip()):
        raise ValidationError("actor_id must be a non-empty string")
    for name in ("created_at", "updated_at"):
        normalize_timestamp(_text(row, name), what=name)
    if row.get("expiration_date") is not None:
        normalize_date(row["expiration_date"], what="expiration_date")
    for name, kind in (
        ("hash", str),
        ("metadata", dict),
        ("categories", list),
        ("immutable", bool),
    ):
        if name in row and not isinstance(row[name], kind):
            raise ValidationError(f"a memory's {name} must be a {kind.__name__}")
    if not all(isinstance(c, str) for c in row.get("categories", [])):
        raise ValidationError("a memory's categories must be strings")
    feedback = row.get("feedback", 0.0)
    if (
        isinstance(feedback, bool)
        or not isinstance(feedback, int | float)
        or not -1 <= feedback <= 1
    ):
        raise ValidationError("a memory's feedback must be a number in [-1, 1]")


def _check_history(row: Mapping[str, Any]) -> None:
    clean_memory_id(row.get("memory_id"))
    if row.get("event") not in ("ADD", "UPDATE", "DELETE"):
        raise ValidationError(
            f"a history event must be ADD, UPDATE or DELETE, got {row.get('event')!r}"
        )
    normalize_timestamp(_text(row, "created_at"), what="created_at")


def _text(row: Mapping[str, Any], name: str) -> str:
    value = row.get(name)
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a timestamp string, got {value!r}")
    return value


def _fields(data: Mapping[str, Any], allowed: set[str], number: int) -> dict[str, Any]:
    unknown = set(data) - allowed
    if unknown:
        raise ValidationError(f"line {number}: unknown fields {', '.join(sorted(unknown))}")
    return dict(data)
