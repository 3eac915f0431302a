"""Schema-driven exports and summaries: fill a caller's JSON Schema from memories, or summarise
them. Memories are shown numbered, with their dates and categories, newest first."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engram.core import jsonschema
from engram.prompts.base import Prompt

EXPORT = "export"
EXPORT_VERSION = "export-v1"
SUMMARY = "summary"
SUMMARY_VERSION = "summary-v1"


@dataclass(frozen=True, slots=True)
class ExportInput:
    schema: dict[str, Any]
    memories: list[dict[str, Any]]
    instructions: str | None = None


class SummaryOutput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    summary: str = Field(description="a short paragraph")


_EXPORT_SYSTEM = """\
You fill a JSON Schema with what a person's memories say. Use only facts stated in the memories; \
when they say nothing about a property, leave it out (or use null where the schema allows it). \
Prefer the newest memory when two disagree. Answer with JSON only: {"data": <the object>}, where \
the object matches the schema exactly."""

_SUMMARY_SYSTEM = """\
Summarise what these memories say about the person (or agent) in one short paragraph: who they \
are, what they do, what they like, and what changed recently. Use only the memories. Answer with \
JSON only: {"summary": "..."}."""


def _listing(memories: list[dict[str, Any]]) -> str:
    lines = []
    for i, item in enumerate(memories):
        categories = ", ".join(item.get("categories") or [])
        tag = f" [{categories}]" if categories else ""
        lines.append(f"{i}: ({str(item.get('created_at', ''))[:10]}) {item['memory']}{tag}")
    return "\n".join(lines) or "(none)"


def export_output(schema: dict[str, Any]) -> type[BaseModel]:
    """The answer model for one schema: `{"data": ...}` whose data must fit the schema. Its JSON
    Schema (what structured-output endpoints receive) is the caller's schema under `data`."""

    class ExportOutput(BaseModel):
        model_config = ConfigDict(extra="ignore")

        data: dict[str, Any]

        @field_validator("data")
        @classmethod
        def _fits(cls, value: dict[str, Any]) -> dict[str, Any]:
            found = jsonschema.problems(value, schema)
            if found:
                raise ValueError("; ".join(found[:5]))
            return value

        @classmethod
        def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
            return {"type": "object", "properties": {"data": schema}, "required": ["data"]}

    return ExportOutput


def render_export(data: ExportInput) -> Prompt[BaseModel]:
    parts = [f"Schema:\n{json.dumps(data.schema, indent=1, ensure_ascii=False)}"]
    if data.instructions:
        parts.append(f"Instructions: {data.instructions}")
    parts.append(f"Memories (newest first):\n{_listing(data.memories)}")
    return Prompt(
        EXPORT, EXPORT_VERSION, _EXPORT_SYSTEM, "\n\n".join(parts), export_output(data.schema)
    )


def render_summary(memories: list[dict[str, Any]]) -> Prompt[SummaryOutput]:
    return Prompt(
        SUMMARY,
        SUMMARY_VERSION,
        _SUMMARY_SYSTEM,
        f"Memories (newest first):\n{_listing(memories)}",
        SummaryOutput,
    )
