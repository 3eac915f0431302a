"""The JSON Schema subset that export schemas may use, and a validator for it.

Structure: `type` (one name or a list), `properties`, `required`, `items`, `enum`, `const`,
`additionalProperties` (a boolean), `minItems`/`maxItems`. Annotations that change nothing are
accepted: `title`, `description`, `default`, `examples`, `format`, `$schema`, `$id`. Anything
else (`$ref`, `oneOf`, `anyOf`, `allOf`, `not`, `if`, `patternProperties`, ...) is refused when
the schema is checked, with its path, rather than silently not enforced.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from engram.errors import ValidationError

TYPES = ("object", "array", "string", "number", "integer", "boolean", "null")
_STRUCTURE = {"type", "properties", "required", "items", "enum", "const", "additionalProperties",
              "minItems", "maxItems"}  # fmt: skip
_ANNOTATIONS = {"title", "description", "default", "examples", "format", "$schema", "$id"}


def parse_schema(raw: Any) -> dict[str, Any]:
    """A schema given as an object or as JSON text, checked; a `ValidationError` otherwise."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise ValidationError(f"schema is not valid JSON: {exc}") from None
    if not isinstance(raw, Mapping):
        raise ValidationError("schema must be a JSON Schema object")
    schema: dict[str, Any] = dict(raw)
    check_schema(schema)
    if "object" not in types_of(schema):
        raise ValidationError("schema: the top level must be of type 'object'")
    return schema


def check_schema(schema: Any, path: str = "schema") -> None:
    if not isinstance(schema, dict):
        raise ValidationError(f"{path} must be an object")
    unknown = set(schema) - _STRUCTURE - _ANNOTATIONS
    if unknown:
        raise ValidationError(
            f"{path}: unsupported JSON Schema keywords {', '.join(sorted(unknown))} "
            f"(supported: {', '.join(sorted(_STRUCTURE))})"
        )
    for name in types_of(schema):
        if name not in TYPES:
            raise ValidationError(f"{path}: unknown type {name!r}")
    properties = schema.get("properties", {})
    if not isinstance(properties, dict):
        raise ValidationError(f"{path}.properties must be an object")
    for key, sub in properties.items():
        check_schema(sub, f"{path}.properties.{key}")
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise ValidationError(f"{path}.required must be a list of property names")
    if "items" in schema:
        check_schema(schema["items"], f"{path}.items")
    if "enum" in schema and not isinstance(schema["enum"], list):
        raise ValidationError(f"{path}.enum must be a list")
    if not isinstance(schema.get("additionalProperties", True), bool):
        raise ValidationError(f"{path}.additionalProperties must be true or false")
    for bound in ("minItems", "maxItems"):
        if bound in schema and not (isinstance(schema[bound], int) and schema[bound] >= 0):
            raise ValidationError(f"{path}.{bound} must be a non-negative integer")


def types_of(schema: dict[str, Any]) -> list[str]:
    """The types a (checked) schema allows; all of them when it names none."""
    declared = schema.get("type")
    if declared is None:
        if "properties" in schema:
            return ["object"]
        return ["array"] if "items" in schema else list(TYPES)
    return [declared] if isinstance(declared, str) else list(declared)


def problems(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """Where `value` breaks a checked `schema`: one line per problem, none when it fits."""
    kind = _kind(value)
    allowed = types_of(schema)
    if kind not in allowed and not (kind == "integer" and "number" in allowed):
        return [f"{path}: expected {' or '.join(allowed)}, got {kind}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{path}: {value!r} is not one of {schema['enum']!r}"]
    if "const" in schema and value != schema["const"]:
        return [f"{path}: must be {schema['const']!r}"]
    found: list[str] = []
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        found += [f"{path}: missing {name!r}" for name in schema.get("required", [])
                  if name not in value]  # fmt: skip
        for key, item in value.items():
            if key in properties:
                found += problems(item, properties[key], f"{path}.{key}")
            elif schema.get("additionalProperties", True) is False:
                found.append(f"{path}: unexpected property {key!r}")
    elif isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            found.append(f"{path}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            found.append(f"{path}: more than {schema['maxItems']} items")
        if "items" in schema:
            for i, item in enumerate(value):
                found += problems(item, schema["items"], f"{path}[{i}]")
    return found


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"
