"""dsrs.Signature: fields from annotations, instructions from the docstring, output JSON schema."""

from __future__ import annotations

from typing import Literal

import pydantic
import pytest

import dsrs
from dsrs._signatures import SignatureError, make_signature


class Person(pydantic.BaseModel):
    name: str
    age: int


class Extract(dsrs.Signature):
    """Extract the people mentioned in the text."""

    text: str = dsrs.InputField(desc="free text")
    people: list[Person] = dsrs.OutputField(desc="everyone named")
    count: int = dsrs.OutputField()
    mood: Literal["happy", "sad"] = dsrs.OutputField()


def test_fields_in_declaration_order_with_types_and_descriptions() -> None:
    assert list(Extract.input_fields) == ["text"]
    assert list(Extract.output_fields) == ["people", "count", "mood"]
    assert Extract.input_fields["text"].desc == "free text"
    assert Extract.output_fields["people"].annotation == list[Person]
    assert Extract.output_fields["count"].is_input is False
    assert Extract.instructions == "Extract the people mentioned in the text."


def test_default_instructions_name_the_fields() -> None:
    class NoDoc(dsrs.Signature):
        question: str = dsrs.InputField()
        answer: str = dsrs.OutputField()

    assert NoDoc.instructions == "Given the fields `question`, produce the fields `answer`."


def test_output_json_schema_describes_every_output() -> None:
    schema = Extract.output_json_schema()
    assert schema["type"] == "object"
    assert schema["required"] == ["people", "count", "mood"]
    assert schema["properties"]["count"]["type"] == "integer"
    assert schema["properties"]["mood"]["enum"] == ["happy", "sad"]
    assert schema["additionalProperties"] is False
    assert "Person" in schema["$defs"]


def test_inheritance_adds_fields() -> None:
    class WithReason(Extract):
        """Extract, and explain."""

        reason: str = dsrs.OutputField()

    assert list(WithReason.output_fields) == ["people", "count", "mood", "reason"]
    assert list(Extract.output_fields) == ["people", "count", "mood"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"__annotations__": {"q": str}, "q": dsrs.InputField()}, "no OutputField"),
        ({"__annotations__": {"a": str}}, "needs a value"),
        ({"__annotations__": {"lane": str}, "lane": dsrs.OutputField()}, "reserved"),
        ({"__annotations__": {"lm_usage": str}, "lm_usage": dsrs.OutputField()}, "reserved"),
    ],
)
def test_malformed_signatures_are_clear_errors(body: dict[str, object], message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        type("Bad", (dsrs.Signature,), dict(body))


def test_signature_error_is_a_dsrs_error() -> None:
    assert issubclass(SignatureError, dsrs.LMError)
    assert issubclass(SignatureError, ValueError)


def test_string_signatures() -> None:
    sig = make_signature("question, context: list[str] -> answer: int, confident: bool", "Answer.")
    assert list(sig.input_fields) == ["question", "context"]
    assert sig.input_fields["context"].annotation == list[str]
    assert sig.output_fields["answer"].annotation is int
    assert sig.instructions == "Answer."
    with pytest.raises(SignatureError, match="'->'"):
        make_signature("question answer")
    with pytest.raises(SignatureError, match="not one of"):
        make_signature("q -> a: complex")


def test_coercion_is_pydantic_lax_mode() -> None:
    assert Extract.output_fields["count"].coerce("42") == 42
    with pytest.raises(pydantic.ValidationError):
        Extract.output_fields["count"].coerce("forty-two")


def test_types_local_to_a_function_resolve() -> None:
    class Local(pydantic.BaseModel):
        x: int

    class UsesLocal(dsrs.Signature):
        q: str = dsrs.InputField()
        out: Local = dsrs.OutputField()
        maybe: str | None = dsrs.OutputField()

    assert UsesLocal.output_fields["out"].annotation is Local
    parsed = dsrs.ChatAdapter().parse(UsesLocal, '[[ ## out ## ]]\n{"x": 3}\n[[ ## maybe ## ]]\nplain words')
    assert parsed == {"out": Local(x=3), "maybe": "plain words"}
    assert dsrs.ChatAdapter().parse(UsesLocal, '[[ ## out ## ]]\n{"x": 3}\n[[ ## maybe ## ]]\nnull')["maybe"] is None
