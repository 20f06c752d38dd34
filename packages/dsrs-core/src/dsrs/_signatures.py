"""Signatures: what a predictor takes and what it must produce, as a typed class.

::

    class QA(dsrs.Signature):
        \"\"\"Answer briefly.\"\"\"            # the instructions
        question: str = dsrs.InputField(desc="a factual question")
        answer: str = dsrs.OutputField()
        confidence: float = dsrs.OutputField(desc="between 0 and 1")

Output types may be ``str``, ``int``, ``float``, ``bool``, ``list[...]``, ``dict[...]``,
``Literal[...]``, ``Optional[...]`` and pydantic models; adapters coerce the model's text to them
with pydantic and describe them to the model with a JSON schema
(:meth:`Signature.output_json_schema`). A string form works too: ``"question -> answer: int"``.
"""

from __future__ import annotations

import inspect
import re
import sys
import typing
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

from pydantic import TypeAdapter, create_model

from dsrs.errors import LMError

__all__ = [
    "FieldSpec",
    "InputField",
    "OutputField",
    "Signature",
    "SignatureError",
    "ensure_signature",
    "make_signature",
]

#: Names a field may not take, because :class:`dsrs.Prediction` uses them.
RESERVED_NAMES = frozenset({"lm_usage", "lane", "response"})


class SignatureError(LMError, ValueError):
    """A signature is malformed, or a predictor got inputs that do not match it."""


class _FieldMarker:
    __slots__ = ("desc", "is_input", "prefix")

    def __init__(self, is_input: bool, desc: str, prefix: str | None) -> None:
        self.is_input = is_input
        self.desc = desc
        self.prefix = prefix

    def __repr__(self) -> str:
        kind = "InputField" if self.is_input else "OutputField"
        return f"{kind}(desc={self.desc!r})"


def InputField(*, desc: str = "", prefix: str | None = None) -> Any:
    """Declare an input field: ``question: str = dsrs.InputField(desc="...")``."""
    return _FieldMarker(True, desc, prefix)


def OutputField(*, desc: str = "", prefix: str | None = None) -> Any:
    """Declare an output field: ``answer: int = dsrs.OutputField(desc="...")``."""
    return _FieldMarker(False, desc, prefix)


@dataclass(frozen=True)
class FieldSpec:
    """One field of a signature: name, Python type, description, and whether it is an input."""

    name: str
    annotation: Any
    desc: str
    is_input: bool

    @cached_property
    def adapter(self) -> TypeAdapter[Any]:
        return TypeAdapter(self.annotation)

    @cached_property
    def is_str(self) -> bool:
        return self.annotation is str

    @cached_property
    def type_name(self) -> str:
        return type_name(self.annotation)

    @cached_property
    def json_schema(self) -> dict[str, Any]:
        return self.adapter.json_schema()

    def coerce(self, value: Any) -> Any:
        """Validate ``value`` against the annotation (pydantic lax mode: ``"42"`` → 42)."""
        return self.adapter.validate_python(value)


def type_name(annotation: Any) -> str:
    """A short human name for an annotation (``list[str]``, ``Literal['a', 'b']``, ``Answer``)."""
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return "one of: " + ", ".join(repr(a) for a in typing.get_args(annotation))
    text = repr(annotation).replace("typing.", "")
    return re.sub(r"\b[\w.]+\.(\w+)", r"\1", text)


class Signature:
    """Base class of signatures; subclass it with annotated Input/Output fields and a docstring.

    Class attributes filled in for each subclass:

    * ``input_fields`` / ``output_fields``: ``dict[name, FieldSpec]`` in declaration order;
    * ``instructions``: the docstring (or a default sentence naming the fields).
    """

    input_fields: ClassVar[dict[str, FieldSpec]] = {}
    output_fields: ClassVar[dict[str, FieldSpec]] = {}
    instructions: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        try:
            hints = typing.get_type_hints(cls, include_extras=True)
        except NameError:
            # String annotations naming classes local to the function that defines the signature:
            # resolve them in that function's frame (the caller of the class statement).
            frame = sys._getframe(1)
            try:
                hints = typing.get_type_hints(cls, localns=dict(frame.f_locals), include_extras=True)
            except Exception as exc:
                raise SignatureError(f"cannot read the annotations of signature {cls.__name__}: {exc}") from exc
            finally:
                del frame
        except Exception as exc:
            raise SignatureError(f"cannot read the annotations of signature {cls.__name__}: {exc}") from exc
        inputs: dict[str, FieldSpec] = {}
        outputs: dict[str, FieldSpec] = {}
        for base in reversed(cls.__mro__[1:]):
            if issubclass(base, Signature):
                inputs.update(base.input_fields)
                outputs.update(base.output_fields)
        for name in inspect.get_annotations(cls):
            marker = cls.__dict__.get(name)
            if not isinstance(marker, _FieldMarker):
                if name in ("input_fields", "output_fields", "instructions"):
                    continue
                raise SignatureError(f"{cls.__name__}.{name} needs a value of dsrs.InputField() or dsrs.OutputField()")
            if name in RESERVED_NAMES or name.startswith("_"):
                raise SignatureError(f"{cls.__name__}: field name {name!r} is reserved")
            spec = FieldSpec(name, hints[name], marker.desc, marker.is_input)
            # A subclass may redeclare an inherited field on the other side.
            inputs.pop(name, None)
            outputs.pop(name, None)
            (inputs if marker.is_input else outputs)[name] = spec
            try:
                spec.adapter  # noqa: B018 - build it now so a bad type fails at class creation
            except Exception as exc:
                raise SignatureError(f"{cls.__name__}.{name}: unsupported type {hints[name]!r}: {exc}") from exc
        if not outputs:
            raise SignatureError(f"signature {cls.__name__} has no OutputField")
        cls.input_fields = inputs
        cls.output_fields = outputs
        doc = cls.__dict__.get("__doc__")
        if doc:
            cls.instructions = inspect.cleandoc(doc)
        else:
            ins = ", ".join(f"`{n}`" for n in inputs) or "nothing"
            outs = ", ".join(f"`{n}`" for n in outputs)
            cls.instructions = f"Given the fields {ins}, produce the fields {outs}."

    @classmethod
    def output_model(cls) -> type[Any]:
        """A pydantic model with one field per output (cached per signature)."""
        model = cls.__dict__.get("_output_model")
        if model is None:
            fields: dict[str, Any] = {n: (f.annotation, ...) for n, f in cls.output_fields.items()}
            model = create_model(f"{cls.__name__}Outputs", **fields)
            setattr(cls, "_output_model", model)  # noqa: B010 - a cache, not a field
        return model  # type: ignore[no-any-return]

    @classmethod
    def output_json_schema(cls) -> dict[str, Any]:
        """The JSON schema of the outputs as one object (what JSONAdapter asks for)."""
        schema = cls.__dict__.get("_output_schema")
        if schema is None:
            schema = cls.output_model().model_json_schema()
            schema.setdefault("additionalProperties", False)
            setattr(cls, "_output_schema", schema)  # noqa: B010
        return schema  # type: ignore[no-any-return]

    @classmethod
    def validate_outputs(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Coerce every output value to its declared type (raises pydantic's ValidationError)."""
        return {name: spec.coerce(values[name]) for name, spec in cls.output_fields.items()}


_SIMPLE_TYPES: dict[str, Any] = {
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "list": list,
    "dict": dict,
    "list[str]": list[str],
    "list[int]": list[int],
    "list[float]": list[float],
    "dict[str, str]": dict[str, str],
    "dict[str, Any]": dict[str, Any],
}
_FIELD = re.compile(r"^\s*([A-Za-z_]\w*)\s*(?::\s*(.+?))?\s*$")


def _split_fields(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return parts


def make_signature(spec: str, instructions: str | None = None, *, name: str = "StringSignature") -> type[Signature]:
    """Build a signature from ``"question, context -> answer: int"`` (types default to ``str``)."""
    inputs_text, arrow, outputs_text = spec.partition("->")
    if not arrow:
        raise SignatureError(f"a string signature needs '->' between inputs and outputs, got {spec!r}")
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {"__annotations__": annotations, "__doc__": instructions}
    for text, is_input in ((inputs_text, True), (outputs_text, False)):
        for part in _split_fields(text):
            m = _FIELD.match(part)
            if m is None:
                raise SignatureError(f"cannot read field {part.strip()!r} in signature {spec!r}")
            field_name, type_text = m.group(1), (m.group(2) or "str").strip()
            if type_text not in _SIMPLE_TYPES:
                raise SignatureError(
                    f"type {type_text!r} of field {field_name!r} is not one of {sorted(_SIMPLE_TYPES)}; "
                    "use a Signature class for other types"
                )
            annotations[field_name] = _SIMPLE_TYPES[type_text]
            namespace[field_name] = _FieldMarker(is_input, "", None)
    return type(name, (Signature,), namespace)


def ensure_signature(signature: type[Signature] | str) -> type[Signature]:
    if isinstance(signature, str):
        return make_signature(signature)
    if isinstance(signature, type) and issubclass(signature, Signature) and signature is not Signature:
        return signature
    raise SignatureError(f"expected a dsrs.Signature subclass or a 'inputs -> outputs' string, got {signature!r}")
