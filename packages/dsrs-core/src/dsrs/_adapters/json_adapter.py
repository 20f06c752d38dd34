"""JSONAdapter: one JSON object with the output fields, schema-enforced where the provider can.

The prompt always describes the object (so any model can follow it); ``response_format`` carries the
signature's JSON schema too, and dsrs sends it only to providers whose class sets
``supports_response_format`` (the LM or each LaneMux lane decides).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from dsrs import _json
from dsrs._adapters.base import (
    Adapter,
    AdapterParseError,
    FormattedCall,
    describe_error,
    describe_fields,
    format_value,
    strip_fences,
)
from dsrs._adapters.chat import marker
from dsrs._signatures import Signature
from dsrs.types import Message, ResponseFormat

__all__ = ["JSONAdapter"]


def _strict_compatible(schema: Mapping[str, Any]) -> bool:
    # OpenAI's strict mode needs additionalProperties=false on every object; nested models ($defs)
    # from pydantic do not say so, so ask for non-strict schema following there.
    return "$defs" not in schema


class JSONAdapter(Adapter):
    """Structured output as a JSON object (``response_format`` where supported)."""

    def __init__(self) -> None:
        self._system: dict[type[Signature], str] = {}
        self._formats: dict[type[Signature], ResponseFormat] = {}

    def response_format(self, signature: type[Signature]) -> ResponseFormat:
        rf = self._formats.get(signature)
        if rf is None:
            schema = signature.output_json_schema()
            rf = ResponseFormat(
                type="json_schema", name=signature.__name__, schema=schema, strict=_strict_compatible(schema)
            )
            self._formats[signature] = rf
        return rf

    def system_message(self, signature: type[Signature]) -> str:
        cached = self._system.get(signature)
        if cached is not None:
            return cached
        lines = describe_fields(signature)
        schema = json.dumps(signature.output_json_schema(), ensure_ascii=False, separators=(",", ":"))
        lines += [
            "",
            "Inputs are given as `[[ ## name ## ]]` sections. Answer with a single JSON object (no other text) "
            f"with the output fields as keys, following this JSON schema: {schema}",
            "",
            "In adhering to this structure, your objective is: ",
        ]
        lines += ["        " + line for line in signature.instructions.splitlines()]
        text = "\n".join(lines)
        self._system[signature] = text
        return text

    def format(self, signature: type[Signature], inputs: Mapping[str, Any]) -> FormattedCall:
        self.check_inputs(signature, inputs)
        parts = [f"{marker(name)}\n{format_value(inputs[name])}\n\n" for name in signature.input_fields]
        keys = ", ".join(f"`{n}`" for n in signature.output_fields)
        user = "".join(parts) + f"Respond with a JSON object with the keys {keys}."
        return FormattedCall(
            (Message("system", self.system_message(signature)), Message("user", user)),
            response_format=self.response_format(signature),
        )

    def parse(self, signature: type[Signature], text: str) -> dict[str, Any]:
        body = strip_fences(text)
        start, end = body.find("{"), body.rfind("}")
        data: Any = None
        if start != -1 and end > start:
            try:
                data = _json.loads(body[start : end + 1])
            except _json.JSONDecodeError:
                data = None
        if not isinstance(data, dict):
            raise AdapterParseError(
                "JSONAdapter: the answer is not a JSON object",
                text=text,
                adapter="JSONAdapter",
                field=next(iter(signature.output_fields)),
                missing=tuple(signature.output_fields),
            )
        outputs = signature.output_fields
        AdapterParseError.check_fields("JSONAdapter", outputs, data, text)
        values: dict[str, Any] = {}
        for name, spec in outputs.items():
            value = data[name]
            if spec.is_str and not isinstance(value, str):
                value = json.dumps(value, ensure_ascii=False)
            try:
                values[name] = spec.coerce(value)
            except ValueError as exc:
                raise AdapterParseError(
                    f"JSONAdapter: field `{name}` is not a valid {spec.type_name}: {describe_error(exc)}",
                    field=name,
                    text=text,
                    adapter="JSONAdapter",
                ) from None
        return values
