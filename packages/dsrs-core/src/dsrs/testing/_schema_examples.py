"""Small values that satisfy a JSON Schema, for loopback servers that must answer structured requests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["example_instance"]


def example_instance(schema: Mapping[str, Any]) -> Any:
    """A small value satisfying a simple JSON Schema (or a Gemini/OpenAPI ``Schema``: upper-case types)."""
    if schema.get("enum"):
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return example_instance(schema[key][0])
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    kind = str(kind).lower()
    if kind == "object":
        return {name: example_instance(sub) for name, sub in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [example_instance(schema["items"])] if isinstance(schema.get("items"), Mapping) else []
    return {"string": "ok", "integer": 1, "number": 1.5, "boolean": True, "null": None}.get(kind, "ok")
