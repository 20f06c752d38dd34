"""JSON Schema → Gemini: the JSON Schema subset (responseJsonSchema) and the OpenAPI subset (responseSchema).

Keyword lists: the Gemini structured-output guide (ai.google.dev/gemini-api/docs/structured-output,
"JSON Schema support") and the API reference's ``Schema`` object (ai.google.dev/api/caching#Schema).
"""

from __future__ import annotations

import pytest

from dsrs_google.schema import SchemaError, to_json_schema, to_openapi_schema

PERSON = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Person",
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "full name", "default": ""},
        "age": {"type": ["integer", "null"], "minimum": 0},
        "kind": {"const": "human"},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        "pet": {"$ref": "#/$defs/Pet"},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
    "$defs": {"Pet": {"type": "object", "properties": {"species": {"enum": ["cat", "dog"]}}}},
}


def test_json_schema_mode_keeps_the_subset_and_drops_annotations() -> None:
    assert to_json_schema(PERSON) == {
        "title": "Person",
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "full name"},
            "age": {"type": ["integer", "null"], "minimum": 0},
            "kind": {"enum": ["human"]},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
            "pet": {"$ref": "#/$defs/Pet"},
        },
        "required": ["name", "age"],
        "additionalProperties": False,
        "$defs": {"Pet": {"type": "object", "properties": {"species": {"enum": ["cat", "dog"]}}}},
    }


def test_openapi_mode_converts() -> None:
    assert to_openapi_schema(PERSON) == {
        "title": "Person",
        "type": "OBJECT",
        "properties": {
            "name": {"type": "STRING", "description": "full name", "default": ""},
            "age": {"type": "INTEGER", "minimum": 0, "nullable": True},
            "kind": {"enum": ["human"], "format": "enum", "type": "STRING"},
            "tags": {"type": "ARRAY", "items": {"type": "STRING"}, "maxItems": 3},
            "pet": {
                "type": "OBJECT",
                "properties": {"species": {"enum": ["cat", "dog"], "format": "enum", "type": "STRING"}},
                "propertyOrdering": ["species"],
            },
        },
        "propertyOrdering": ["name", "age", "kind", "tags", "pet"],
        "required": ["name", "age"],
    }


def test_openapi_any_of_with_null_becomes_nullable() -> None:
    schema = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert to_openapi_schema(schema) == {"type": "STRING", "nullable": True}
    union = {"oneOf": [{"type": "string"}, {"type": "integer"}]}
    assert to_openapi_schema(union) == {"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]}


@pytest.mark.parametrize(
    ("schema", "keyword"),
    [
        ({"type": "object", "allOf": [{"type": "object"}]}, "allOf"),
        ({"type": "string", "not": {"const": "x"}}, "not"),
        ({"type": "object", "patternProperties": {"^x": {"type": "string"}}}, "patternProperties"),
        ({"type": "array", "uniqueItems": True}, "uniqueItems"),
        ({"type": "number", "multipleOf": 2}, "multipleOf"),
        ({"type": "number", "exclusiveMinimum": 0}, "exclusiveMinimum"),
        ({"if": {"type": "string"}, "then": {"type": "string"}}, "if"),
    ],
)
def test_json_schema_mode_rejects_unsupported_keywords(schema: dict[str, object], keyword: str) -> None:
    with pytest.raises(SchemaError, match=repr(keyword)):
        to_json_schema(schema)


@pytest.mark.parametrize(
    ("schema", "text"),
    [
        ({"type": "object", "allOf": [{"type": "object"}]}, "'allOf'"),
        ({"type": "object", "additionalProperties": {"type": "string"}}, "additionalProperties"),
        ({"enum": [1, 2]}, "string enum values"),
        ({"const": 3}, "string constants"),
        ({"$ref": "#/$defs/Missing"}, "does not point"),
        (
            {
                "$ref": "#/$defs/Node",
                "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
            },
            "recursive",
        ),
        ({"type": "uuid"}, "unknown JSON Schema type"),
    ],
)
def test_openapi_mode_rejects_what_it_cannot_express(schema: dict[str, object], text: str) -> None:
    with pytest.raises(SchemaError, match=text):
        to_openapi_schema(schema)


def test_openapi_mode_keeps_string_constraints() -> None:
    schema = {"type": "string", "minLength": 1, "maxLength": 5, "pattern": "^[a-z]+$"}
    assert to_openapi_schema(schema) == {"type": "STRING", "minLength": 1, "maxLength": 5, "pattern": "^[a-z]+$"}


def test_error_names_the_path() -> None:
    with pytest.raises(SchemaError, match="/properties/a"):
        to_json_schema({"type": "object", "properties": {"a": {"type": "string", "uniqueItems": True}}})


def test_schema_error_is_an_invalid_request() -> None:
    import dsrs

    assert issubclass(SchemaError, dsrs.InvalidRequestError)


def test_json_schema_mode_accepts_the_string_and_object_constraints_gemini_documents() -> None:
    schema = {
        "type": "object",
        "properties": {
            "code": {"type": "string", "pattern": "^[A-Z]{3}$", "minLength": 3, "maxLength": 3},
            "tags": {
                "type": "object",
                "minProperties": 1,
                "maxProperties": 4,
                "additionalProperties": {"type": "string"},
            },
        },
        "required": ["code"],
    }
    assert to_json_schema(schema) == schema


def test_a_pydantic_constrained_string_is_accepted() -> None:
    import pydantic

    class Airport(pydantic.BaseModel):
        code: str = pydantic.Field(pattern="^[A-Z]{3}$", min_length=3, max_length=3)

    schema = Airport.model_json_schema()
    assert to_json_schema(schema)["properties"]["code"] == {
        "pattern": "^[A-Z]{3}$",
        "minLength": 3,
        "maxLength": 3,
        "title": "Code",
        "type": "string",
    }
