"""Schema-driven exports and summaries of the memories in a scope.

With an LLM, one call fills the caller's JSON Schema from the memories (the answer is validated
against the schema, with the LLM layer's repair retry). Without one, `fill_offline` maps the
fields it knows, deterministically:

- `user_id`, `agent_id`, `app_id`, `run_id`: the scope's value;
- attributes read from the memories by the offline rules (newest memory wins): `name`
  (`full_name`, ...), `location` (`city`, ...), `origin`, `age`, `employer` (`company`, ...),
  `job` (`occupation`, `role`, ...), `diet`, `allergies`, `likes`, `dislikes` and
  `favorite_<thing>`;
- a property named after a memory category (`food`, `travel`, `hobbies`, ...): that category's
  memories;
- `memories` (`facts`, `notes`, ...): every memory, as text or as objects whose properties are
  memory fields (`id`, `memory`/`text`, `created_at`, `categories`, `metadata`, ...);
- `summary`: the offline summary; `memory_count`: how many memories;
- a nested object: the same rules inside it.

A property it cannot map is left out; if the schema requires one, the export fails and names it
(nothing is invented).
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from engram.core import jsonschema
from engram.core.filters import Node, scope_of
from engram.errors import ValidationError
from engram.pipeline.context import Context
from engram.pipeline.items import memory_item
from engram.pipeline.offline_rules import fact_key
from engram.prompts.export import ExportInput, render_export, render_summary
from engram.providers.llm.base import LLM
from engram.types import SummaryResult

SCOPE_FIELDS = ("user_id", "agent_id", "app_id", "run_id")
_ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("name", "full_name", "user_name", "person_name"),
    "location": ("location", "city", "current_location", "current_city", "residence", "home",
                 "lives_in", "home_city"),
    "origin": ("origin", "hometown", "home_town", "from", "country_of_origin", "birthplace"),
    "age": ("age",),
    "employer": ("employer", "company", "current_company", "workplace", "organization",
                 "organisation", "works_at"),
    "job": ("job", "job_title", "role", "current_role", "occupation", "profession", "position"),
    "diet": ("diet", "dietary_preference", "dietary_preferences", "diet_type"),
    "allergies": ("allergies", "allergy", "allergens"),
    "likes": ("likes", "loves", "preferences", "interests"),
    "dislikes": ("dislikes", "hates", "aversions"),
}  # fmt: skip
_FIELD_OF = {alias: key for key, aliases in _ALIASES.items() for alias in aliases}
_ALL = ("memories", "facts", "notes", "items", "all_memories", "memory_list")
_COUNT = ("memory_count", "count", "total_memories", "number_of_memories")
_SUMMARY = ("summary", "overview")
_TEXT = ("memory", "text", "content", "fact", "value")


async def export_scope(
    ctx: Context, llm: LLM | None, where: Node | None, schema: Any, instructions: str | None
) -> dict[str, Any]:
    """`AsyncMemory.export`: the schema checked, then filled by the LLM or offline."""
    parsed = jsonschema.parse_schema(schema)
    items, scope = await _in_scope(ctx, where)
    if llm is None:
        return fill_offline(parsed, Facts(items), scope, summarize_offline(items, scope))
    answer = await llm.generate(render_export(ExportInput(parsed, items, instructions)))
    data: dict[str, Any] = answer.data  # type: ignore[attr-defined]
    return data


async def summarize_scope(ctx: Context, llm: LLM | None, where: Node | None) -> SummaryResult:
    """`AsyncMemory.summary`: by the LLM when there is one (and memories), else offline."""
    items, scope = await _in_scope(ctx, where)
    if llm is None or not items:
        text, method = summarize_offline(items, scope), "offline"
    else:
        text = (await llm.generate(render_summary(items))).summary
        method = f"llm:{llm.model}"
    return {"summary": text, "memory_count": len(items), "method": method}


async def _in_scope(
    ctx: Context, where: Node | None
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Every live memory the filters select, newest first, and the scope's ids."""
    found = await ctx.store.list_memories(where, today=ctx.today(), show_expired=False)
    return [dict(memory_item(r)) for r in found.records], scope_of(where)


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


class Facts:
    """What the offline rules read from a scope's memories (given newest first)."""

    def __init__(self, memories: list[dict[str, Any]]) -> None:
        self.memories = memories
        self.single: dict[str, str] = {}
        self.multi: dict[str, list[str]] = defaultdict(list)
        self.by_category: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for item in memories:
            for category in item.get("categories") or []:
                self.by_category[_norm(category)].append(item)
            key = fact_key(item["memory"])
            if key is None:
                continue
            if key.name.startswith("pref:"):
                which = "likes" if key.value == "+" else "dislikes"
                self._add_multi(which, key.display)
            elif key.name.startswith("allergy:"):
                self._add_multi("allergies", key.display)
            elif key.single:
                name = key.name.replace("favorite:", "favorite_").replace(" ", "_")
                self.single.setdefault(name, key.display)

    def _add_multi(self, name: str, value: str) -> None:
        if value not in self.multi[name]:
            self.multi[name].append(value)


def fill_offline(
    schema: dict[str, Any], facts: Facts, scope: dict[str, str], summary: str
) -> dict[str, Any]:
    """The schema filled from known fields; raises `ValidationError` naming required properties
    it cannot fill."""
    missing: list[str] = []
    data = _fill_object(schema, facts, scope, summary, "$", missing)
    if missing:
        raise ValidationError(
            "the offline export cannot fill required properties "
            f"{', '.join(missing)}: configure an LLM, or make them optional",
            details={"missing": missing},
        )
    found = jsonschema.problems(data, schema)
    if found:  # a mapped value of the wrong shape (an enum, say): say so, never bend it
        raise ValidationError(f"the offline export does not fit the schema: {'; '.join(found)}")
    return data


def _fill_object(
    schema: dict[str, Any],
    facts: Facts,
    scope: dict[str, str],
    summary: str,
    path: str,
    missing: list[str],
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    required = set(schema.get("required", []))
    for name, sub in schema.get("properties", {}).items():
        value = _value(_norm(name), sub, facts, scope, summary, f"{path}.{name}", missing)
        if value is not None:
            out[name] = value
        elif name in required:
            if "null" in jsonschema.types_of(sub):
                out[name] = None
            else:
                missing.append(f"{path}.{name}")
    return out


def _value(
    name: str,
    schema: dict[str, Any],
    facts: Facts,
    scope: dict[str, str],
    summary: str,
    path: str,
    missing: list[str],
) -> Any:
    types = jsonschema.types_of(schema)
    if name in SCOPE_FIELDS:
        return _shaped([scope[name]], schema) if name in scope else None
    if name in _COUNT and ("integer" in types or "number" in types):
        return len(facts.memories)
    if name in _SUMMARY:
        return _shaped([summary], schema) if summary else None
    field = _FIELD_OF.get(name, name if name.startswith("favorite_") else "")
    if field in facts.single:
        return _shaped([facts.single[field]], schema)
    if field in facts.multi:
        return _shaped(facts.multi[field], schema)
    if name in _ALL:
        return _memories(facts.memories, schema)
    category = _category(name, facts)
    if category is not None:
        return _memories(facts.by_category[category], schema)
    if "properties" in schema and "object" in types:
        inner = _fill_object(schema, facts, scope, summary, path, missing)
        return inner or None
    return None


def _category(name: str, facts: Facts) -> str | None:
    for candidate in (name, name.rstrip("s"), f"{name}s"):
        if candidate in facts.by_category:
            return candidate
    return None


def _shaped(values: list[str], schema: dict[str, Any]) -> Any:
    """Text values in the shape the schema asks for: a list, one string, or a number."""
    types = jsonschema.types_of(schema)
    if not values:
        return None
    if "array" in types:
        return list(values)
    if "string" in types:
        return "; ".join(values)
    if "integer" in types or "number" in types:
        number = re.search(r"-?\d+(?:\.\d+)?", values[0])
        if number is None:
            return None
        return int(float(number.group())) if "integer" in types else float(number.group())
    return None


def _memories(items: list[dict[str, Any]], schema: dict[str, Any]) -> Any:
    types = jsonschema.types_of(schema)
    if not items:
        return None
    if "array" not in types:
        return _shaped([i["memory"] for i in items], schema)
    item_schema = schema.get("items", {})
    if "object" not in jsonschema.types_of(item_schema) or "properties" not in item_schema:
        return [i["memory"] for i in items]
    return [_project(i, item_schema) for i in items]


def _project(item: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in schema["properties"]:
        key = _norm(name)
        if key in _TEXT:
            out[name] = item["memory"]
        elif key in item:
            out[name] = item[key]
        elif key in item.get("metadata", {}):
            out[name] = item["metadata"][key]
    return out


def summarize_offline(memories: list[dict[str, Any]], scope: dict[str, str]) -> str:
    """A deterministic summary: how many memories, then each category's memories, newest first."""
    if not memories:
        return ""
    who = ", ".join(f"{k} {v}" for k, v in scope.items()) or "this scope"
    dates = sorted(str(m.get("created_at", ""))[:10] for m in memories)
    lines = [f"{len(memories)} memories for {who}, {dates[0]} to {dates[-1]}."]
    grouped: dict[str, list[str]] = defaultdict(list)
    for item in memories:
        grouped[(item.get("categories") or ["misc"])[0]].append(item["memory"].rstrip("."))
    for category, texts in grouped.items():
        lines.append(f"{category.replace('_', ' ').capitalize()}: {'; '.join(texts)}.")
    return "\n".join(lines)
