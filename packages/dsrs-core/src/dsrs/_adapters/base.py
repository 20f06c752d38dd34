"""The adapter interface and what adapters share (value formatting, coercion, the parse error)."""

from __future__ import annotations

import abc
import ast
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, get_args, get_origin

from pydantic import BaseModel, ValidationError

from dsrs._signatures import FieldSpec, Signature, SignatureError
from dsrs.errors import ResponseParseError
from dsrs.types import Message, ResponseFormat

__all__ = ["Adapter", "AdapterParseError", "FormattedCall", "coerce_text", "format_value"]

_FENCE = re.compile(r"^\s*```[\w-]*\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)


class AdapterParseError(ResponseParseError):
    """The model's answer could not be read as the signature's outputs.

    ``missing`` names the output fields that were absent, ``field`` the first field at fault and
    ``text`` the (truncated) answer. A LaneMux treats it as a bad answer from that lane: it moves on
    to the next lane without retrying the same one.
    """

    retry_same_lane: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        missing: Sequence[str] = (),
        text: str | None = None,
        adapter: str | None = None,
    ) -> None:
        self.field = field
        self.missing = tuple(missing)
        self.adapter = adapter
        super().__init__(message, body=text)
        self.text = self.body  # redacted and truncated, like every error body

    @classmethod
    def check_fields(cls, adapter: str, outputs: Mapping[str, Any], found: Mapping[str, Any], text: str) -> None:
        """Raise naming every output field absent from ``found`` (the first one as ``field``)."""
        missing = [n for n in outputs if n not in found]
        if missing:
            raise cls(
                f"{adapter}: the answer has no field {', '.join(f'`{n}`' for n in missing)} "
                f"(expected {', '.join(f'`{n}`' for n in outputs)})",
                field=missing[0],
                missing=missing,
                text=text,
                adapter=adapter,
            )


@dataclass(frozen=True, slots=True)
class FormattedCall:
    """What an adapter sends: messages, and a ``response_format`` when it wants structured output."""

    messages: tuple[Message, ...]
    response_format: ResponseFormat | None = None


class Adapter(abc.ABC):
    """Formats a signature's inputs into messages and parses the answer into its outputs."""

    @abc.abstractmethod
    def format(self, signature: type[Signature], inputs: Mapping[str, Any]) -> FormattedCall:
        """Messages (and optionally a response format) asking for ``signature``'s outputs."""

    @abc.abstractmethod
    def parse(self, signature: type[Signature], text: str) -> dict[str, Any]:
        """``{output name: value}`` from the model's text, coerced; or :class:`AdapterParseError`."""

    def check_inputs(self, signature: type[Signature], inputs: Mapping[str, Any]) -> None:
        missing = [n for n in signature.input_fields if n not in inputs]
        unknown = [n for n in inputs if n not in signature.input_fields]
        if missing or unknown:
            parts = []
            if missing:
                parts.append(f"missing input(s) {', '.join(missing)}")
            if unknown:
                parts.append(f"unknown input(s) {', '.join(unknown)}")
            raise SignatureError(
                f"{signature.__name__}: {'; '.join(parts)} (inputs are: {', '.join(signature.input_fields) or 'none'})"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def describe_fields(signature: type[Signature]) -> list[str]:
    """The "Your input/output fields are" lines both adapters open their system message with."""
    lines = ["Your input fields are:"]
    for i, f in enumerate(signature.input_fields.values(), 1):
        lines.append(f"{i}. `{f.name}` ({f.type_name})" + (f": {f.desc}" if f.desc else ""))
    lines.append("Your output fields are:")
    for i, f in enumerate(signature.output_fields.values(), 1):
        lines.append(f"{i}. `{f.name}` ({f.type_name})" + (f": {f.desc}" if f.desc else ""))
    return lines


def format_value(value: Any) -> str:
    """An input value as prompt text: strings verbatim, models and containers as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    try:
        return json.dumps(value, ensure_ascii=False, default=_default)
    except (TypeError, ValueError):
        return str(value)


def _default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return str(value)


def strip_fences(text: str) -> str:
    m = _FENCE.match(text)
    return m.group(1).strip() if m else text.strip()


def is_scalar(annotation: Any) -> bool:
    if annotation in (int, float, bool, str):
        return True
    return get_origin(annotation) is Literal


def coerce_text(spec: FieldSpec, text: str) -> Any:
    """Turn the text an LM wrote for one field into the field's type (raises ValidationError/ValueError)."""
    if spec.is_str:
        return text.strip()
    value = strip_fences(text)
    annotation = spec.annotation
    if value in _NONE_WORDS and _allows_none(annotation):
        return None  # an Optional output answered "None" stays None, not the string 'None'

    if is_scalar(annotation):
        if get_origin(annotation) is Literal:
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"`":
                value = value[1:-1]
            options = get_args(annotation)
            for option in options:  # case-insensitive match for string literals
                if isinstance(option, str) and option.lower() == value.lower():
                    return option
        return spec.coerce(value)
    try:
        return spec.adapter.validate_json(value)
    except ValidationError as exc:
        first_error = exc
    try:
        loaded = ast.literal_eval(value)  # a Python-literal list/dict, as small models often write
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        loaded = None
    if loaded is not None:
        try:
            return spec.coerce(loaded)
        except ValidationError:
            pass
    try:
        return spec.coerce(value)  # e.g. ``str | None`` given plain text
    except ValidationError:
        raise first_error from None


_NONE_WORDS = frozenset({"", "None", "null", "NULL", "none"})


def _allows_none(annotation: Any) -> bool:
    return annotation is type(None) or type(None) in get_args(annotation)


def describe_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        errs = exc.errors()
        if errs:
            return str(errs[0].get("msg", exc))
    return str(exc)
