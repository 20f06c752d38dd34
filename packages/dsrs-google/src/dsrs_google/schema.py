"""JSON Schema → what the Gemini API accepts, for structured output and function declarations.

Gemini takes schemas two ways (API reference, ``GenerationConfig`` and ``FunctionDeclaration``):

* ``responseJsonSchema`` / ``parametersJsonSchema`` — JSON Schema (Gemini 2.5 and later).
  :func:`to_json_schema` accepts every keyword Gemini documents for it (:data:`JSON_SCHEMA_KEYWORDS`)
  and returns the schema with pure annotations removed and ``const`` spelled as a one-value
  ``enum``; only keywords Gemini does not document (``allOf``, ``not``, ``if``...) are refused.
* ``responseSchema`` / ``parameters`` — Gemini's ``Schema`` object, a subset of the OpenAPI 3.0
  schema (every model, and the only form older ones know). :func:`to_openapi_schema` converts:
  ``$ref`` inlined, ``["T", "null"]`` → ``nullable``, ``oneOf`` → ``anyOf``, types upper-case,
  ``propertyOrdering`` from the order of ``properties``.

Keywords neither form supports raise :class:`SchemaError` naming the keyword and where it is;
they are never dropped silently, because a dropped constraint is a constraint the model ignores.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dsrs.errors import InvalidRequestError

__all__ = ["JSON_SCHEMA_KEYWORDS", "OPENAPI_KEYWORDS", "SchemaError", "to_json_schema", "to_openapi_schema"]


class SchemaError(InvalidRequestError):
    """A schema uses something Gemini cannot take."""


#: Keywords that only document a schema; removed, as they constrain nothing.
ANNOTATIONS = frozenset({"$schema", "$comment", "examples", "deprecated", "readOnly", "writeOnly", "default"})
#: The JSON Schema keywords ``responseJsonSchema`` / ``parametersJsonSchema`` take: the list of the
#: API reference (``GenerationConfig.responseJsonSchema``) and the structured-output guide ("JSON
#: Schema support"), plus the string and object constraints Gemini's own ``Schema`` documents
#: (``pattern``, ``minLength``, ``maxLength``, ``minProperties``, ``maxProperties``), which the
#: JSON Schema path accepts too. pydantic emits ``pattern`` for ``Decimal`` fields, for example.
JSON_SCHEMA_KEYWORDS = frozenset(
    {
        "$id", "$defs", "$ref", "$anchor", "type", "format", "title", "description", "enum", "items",
        "prefixItems", "minItems", "maxItems", "minimum", "maximum", "anyOf", "oneOf", "properties",
        "additionalProperties", "required", "propertyOrdering", "pattern", "minLength", "maxLength",
        "minProperties", "maxProperties",
    }
)  # fmt: skip
#: Fields of Gemini's OpenAPI-subset ``Schema`` object (API reference, "Schema").
OPENAPI_KEYWORDS = frozenset(
    {
        "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems", "properties",
        "required", "minProperties", "maxProperties", "minLength", "maxLength", "pattern", "example", "anyOf",
        "propertyOrdering", "default", "items", "minimum", "maximum",
    }
)  # fmt: skip
_TYPES = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})


def _where(path: str) -> str:
    return path or "the schema root"


def _fail(message: str) -> SchemaError:
    return SchemaError(message, provider="google")


def _is_schema(value: Any) -> bool:
    return isinstance(value, Mapping)


# --- responseJsonSchema -----------------------------------------------------------------------


def to_json_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``schema`` against Gemini's JSON Schema subset; return a clean copy."""
    if not _is_schema(schema):
        raise _fail(f"a JSON schema must be an object, got {type(schema).__name__}")
    return _json_node(schema, "")


def _json_node(node: Mapping[str, Any], path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        here = f"{path}/{key}"
        if key in ANNOTATIONS:
            continue
        if key == "const":
            out["enum"] = [value]
            continue
        if key not in JSON_SCHEMA_KEYWORDS:
            raise _fail(
                f"JSON Schema keyword {key!r} at {_where(path)} is not supported by Gemini structured output "
                f"(supported: {', '.join(sorted(JSON_SCHEMA_KEYWORDS))}); remove it, or express it in the "
                "prompt or description"
            )
        if key in ("properties", "$defs"):
            if not isinstance(value, Mapping):
                raise _fail(f"{here} must be an object of schemas")
            out[key] = {
                name: _json_node(_schema_at(sub, f"{here}/{name}"), f"{here}/{name}") for name, sub in value.items()
            }
        elif key in ("items", "additionalProperties") and _is_schema(value):
            out[key] = _json_node(value, here)
        elif key in ("anyOf", "oneOf", "prefixItems"):
            if not isinstance(value, list) or not value:
                raise _fail(f"{here} must be a non-empty list of schemas")
            out[key] = [_json_node(_schema_at(sub, f"{here}/{i}"), f"{here}/{i}") for i, sub in enumerate(value)]
        elif key == "type":
            _check_type(value, here)
            out[key] = list(value) if isinstance(value, list) else value
        elif key == "enum":
            if not isinstance(value, list) or not value:
                raise _fail(f"{here} must be a non-empty list")
            if not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
                raise _fail(f"{here}: Gemini enums take strings and numbers only")
            out[key] = list(value)
        else:
            out[key] = value
    return out


def _schema_at(value: Any, path: str) -> Mapping[str, Any]:
    if not _is_schema(value):
        raise _fail(f"{path} must be a schema (an object), got {type(value).__name__}")
    return value  # type: ignore[no-any-return]


def _check_type(value: Any, path: str) -> None:
    kinds = value if isinstance(value, list) else [value]
    bad = [k for k in kinds if not isinstance(k, str) or k not in _TYPES]
    if bad or not kinds:
        raise _fail(f"{path}: unknown JSON Schema type {bad or value!r}")


# --- responseSchema (OpenAPI subset) ----------------------------------------------------------


def to_openapi_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Convert ``schema`` to Gemini's OpenAPI-subset ``Schema`` object."""
    if not _is_schema(schema):
        raise _fail(f"a JSON schema must be an object, got {type(schema).__name__}")
    defs: dict[str, Any] = {}
    for key in ("$defs", "definitions"):
        if isinstance(schema.get(key), Mapping):
            defs.update({f"#/{key}/{name}": sub for name, sub in schema[key].items()})
    return _openapi_node(schema, "", defs, ())


def _resolve(
    ref: Any, defs: Mapping[str, Any], path: str, seen: tuple[str, ...]
) -> tuple[Mapping[str, Any], tuple[str, ...]]:
    if not isinstance(ref, str) or ref not in defs:
        raise _fail(f"{path}/$ref {ref!r} does not point into this schema's $defs/definitions")
    if ref in seen:
        raise _fail(
            f"{path}/$ref {ref!r} is recursive; Gemini's OpenAPI schema cannot express recursion "
            "(use a model that takes responseJsonSchema, or flatten the schema)"
        )
    return _schema_at(defs[ref], ref), (*seen, ref)


def _openapi_node(node: Mapping[str, Any], path: str, defs: Mapping[str, Any], seen: tuple[str, ...]) -> dict[str, Any]:
    if "$ref" in node:
        target, seen = _resolve(node["$ref"], defs, path, seen)
        siblings = {k: v for k, v in node.items() if k not in ("$ref", *ANNOTATIONS)}
        merged = {**target, **siblings}
        return _openapi_node(merged, path, defs, seen)
    out: dict[str, Any] = {}
    nullable = False
    for key, value in node.items():
        here = f"{path}/{key}"
        if key in ANNOTATIONS - {"default"} or key in ("$defs", "definitions", "$id", "$anchor"):
            continue
        if key == "const":
            if not isinstance(value, str):
                raise _fail(f"{here}: Gemini's OpenAPI schema takes string constants only")
            out["enum"] = [value]
            out.setdefault("format", "enum")
        elif key == "type":
            _check_type(value, here)
            kinds = [k for k in (value if isinstance(value, list) else [value]) if k != "null"]
            nullable = nullable or len(kinds) < (len(value) if isinstance(value, list) else 1)
            if len(kinds) == 1:
                out["type"] = kinds[0].upper()
            elif not kinds:
                out["type"] = "NULL"
            else:
                out["anyOf"] = [{"type": k.upper()} for k in kinds]
        elif key in ("anyOf", "oneOf"):
            if not isinstance(value, list) or not value:
                raise _fail(f"{here} must be a non-empty list of schemas")
            subs = []
            for i, sub in enumerate(value):
                sub = _schema_at(sub, f"{here}/{i}")
                if sub.get("type") == "null" and len(sub) == 1:
                    nullable = True
                    continue
                subs.append(_openapi_node(sub, f"{here}/{i}", defs, seen))
            if len(subs) == 1 and not (set(subs[0]) & set(out)):
                out.update(subs[0])
            elif subs:
                out["anyOf"] = subs
        elif key == "properties":
            if not isinstance(value, Mapping):
                raise _fail(f"{here} must be an object of schemas")
            out["properties"] = {
                name: _openapi_node(_schema_at(sub, f"{here}/{name}"), f"{here}/{name}", defs, seen)
                for name, sub in value.items()
            }
            if "propertyOrdering" not in node and value:
                out["propertyOrdering"] = list(value)
        elif key == "items":
            out["items"] = _openapi_node(_schema_at(value, here), here, defs, seen)
        elif key == "additionalProperties":
            if value is not False:
                raise _fail(
                    f"{here}: Gemini's OpenAPI schema has no additionalProperties (open-ended maps); "
                    "list the properties, or use a model that takes responseJsonSchema"
                )
            # Gemini never adds properties the schema does not list, so `false` is what it does anyway.
        elif key == "enum":
            if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
                raise _fail(f"{here}: Gemini's OpenAPI schema takes non-empty lists of string enum values only")
            out["enum"] = list(value)
            out.setdefault("format", "enum")
        elif key == "nullable":
            nullable = nullable or bool(value)
        elif key in OPENAPI_KEYWORDS:
            out[key] = value
        else:
            raise _fail(
                f"JSON Schema keyword {key!r} at {_where(path)} cannot be expressed in Gemini's OpenAPI schema "
                f"(supported: {', '.join(sorted(OPENAPI_KEYWORDS | {'$ref', '$defs', 'const', 'oneOf'}))})"
            )
    if "enum" in out and "type" not in out:
        out["type"] = "STRING"
    if nullable:
        out["nullable"] = True
    return out
