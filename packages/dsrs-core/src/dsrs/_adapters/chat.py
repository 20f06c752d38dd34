"""ChatAdapter: field markers in plain chat text, as DSPy does.

The model is shown the structure ``[[ ## field ## ]]`` / value pairs, ending with
``[[ ## completed ## ]]``; its answer is split on the markers and each output coerced to its type.
Parsing tolerates extra spaces or ``#`` in markers, case differences, code fences around values and
text before the first marker; a signature with a single output accepts a bare answer with no markers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, get_origin

from dsrs._adapters.base import (
    Adapter,
    AdapterParseError,
    FormattedCall,
    coerce_text,
    describe_error,
    describe_fields,
    format_value,
    is_scalar,
)
from dsrs._signatures import FieldSpec, Signature
from dsrs.types import Message

__all__ = ["ChatAdapter"]

_MARKER = re.compile(r"^[ \t*]*\[\[[ \t]*#+[ \t]*([A-Za-z_][\w ]*?)[ \t]*#+[ \t]*\]\][ \t*]*$", re.MULTILINE)


def marker(name: str) -> str:
    return f"[[ ## {name} ## ]]"


def _type_note(spec: FieldSpec) -> str:
    if spec.is_str:
        return ""
    if get_origin(spec.annotation) is not None and is_scalar(spec.annotation):  # Literal
        return f"        # note: the value you produce must exactly match (no extra characters) {spec.type_name}"
    if is_scalar(spec.annotation):
        return f"        # note: the value you produce must be a single {spec.type_name} value"
    schema = json.dumps(spec.json_schema, ensure_ascii=False, separators=(",", ":"))
    return f"        # note: the value you produce must adhere to the JSON schema: {schema}"


class ChatAdapter(Adapter):
    """Field-marker prompts; works with any chat model."""

    def __init__(self) -> None:
        self._system: dict[type[Signature], str] = {}
        self._suffix: dict[type[Signature], str] = {}

    def system_message(self, signature: type[Signature]) -> str:
        cached = self._system.get(signature)
        if cached is not None:
            return cached
        lines = describe_fields(signature)
        lines += [
            "",
            "All interactions will be structured in the following way, with the appropriate values filled in.",
            "",
        ]
        for f in signature.input_fields.values():
            lines += [marker(f.name), "{" + f.name + "}", ""]
        for f in signature.output_fields.values():
            lines += [marker(f.name), "{" + f.name + "}" + _type_note(f), ""]
        lines += [marker("completed"), "", "In adhering to this structure, your objective is: "]
        lines += ["        " + line for line in signature.instructions.splitlines()]
        text = "\n".join(lines)
        self._system[signature] = text
        return text

    def _user_suffix(self, signature: type[Signature]) -> str:
        cached = self._suffix.get(signature)
        if cached is not None:
            return cached
        names = [f"`{marker(n)}`" for n in signature.output_fields]
        order = names[0] if len(names) == 1 else ", then ".join(names)
        text = (
            f"Respond with the corresponding output fields, starting with the field {order}, "
            f"and then ending with the marker for `{marker('completed')}`."
        )
        self._suffix[signature] = text
        return text

    def format(self, signature: type[Signature], inputs: Mapping[str, Any]) -> FormattedCall:
        self.check_inputs(signature, inputs)
        parts = [f"{marker(name)}\n{format_value(inputs[name])}\n\n" for name in signature.input_fields]
        user = "".join(parts) + self._user_suffix(signature)
        return FormattedCall((Message("system", self.system_message(signature)), Message("user", user)))

    def parse(self, signature: type[Signature], text: str) -> dict[str, Any]:
        outputs = signature.output_fields
        sections: dict[str, str] = {}
        matches = list(_MARKER.finditer(text))
        lowered = {n.lower(): n for n in outputs}
        for i, m in enumerate(matches):
            name = lowered.get(m.group(1).strip().lower().replace(" ", "_"))
            if name is None or name in sections:
                continue
            end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
            sections[name] = text[m.end() : end].strip()
        if not matches and len(outputs) == 1:
            sections[next(iter(outputs))] = text.strip()
        AdapterParseError.check_fields("ChatAdapter", outputs, sections, text)
        values: dict[str, Any] = {}
        for name, spec in outputs.items():
            try:
                values[name] = coerce_text(spec, sections[name])
            except ValueError as exc:  # pydantic's ValidationError is a ValueError
                raise AdapterParseError(
                    f"ChatAdapter: field `{name}` is not a valid {spec.type_name}: {describe_error(exc)}",
                    field=name,
                    text=text,
                    adapter="ChatAdapter",
                ) from None
        return values
