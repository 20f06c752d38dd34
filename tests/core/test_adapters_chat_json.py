"""ChatAdapter and JSONAdapter: prompts they build, robust parsing, typed parse errors."""

from __future__ import annotations

from typing import Literal

import pydantic
import pytest

import dsrs
from dsrs._adapters import AdapterParseError, ChatAdapter, JSONAdapter
from dsrs._signatures import SignatureError


class Person(pydantic.BaseModel):
    name: str
    age: int


class QA(dsrs.Signature):
    """Answer with a number and your confidence."""

    question: str = dsrs.InputField(desc="a question")
    context: list[str] = dsrs.InputField()
    answer: int = dsrs.OutputField()
    confident: bool = dsrs.OutputField()


class Typed(dsrs.Signature):
    text: str = dsrs.InputField()
    label: Literal["spam", "ham"] = dsrs.OutputField()
    score: float = dsrs.OutputField()
    tags: list[str] = dsrs.OutputField()
    person: Person = dsrs.OutputField()
    note: str = dsrs.OutputField()


def test_chat_prompt_has_markers_types_and_instructions() -> None:
    call = ChatAdapter().format(QA, {"question": "2+2?", "context": ["math", "easy"]})
    system, user = call.messages
    assert (system.role, user.role) == ("system", "user")
    assert "1. `question` (str): a question" in (system.content or "")
    assert "[[ ## answer ## ]]\n{answer}        # note: the value you produce must be a single int value" in (
        system.content or ""
    )
    assert (system.content or "").endswith("your objective is: \n        Answer with a number and your confidence.")
    assert (user.content or "").startswith('[[ ## question ## ]]\n2+2?\n\n[[ ## context ## ]]\n["math", "easy"]\n\n')
    assert "starting with the field `[[ ## answer ## ]]`, then `[[ ## confident ## ]]`" in (user.content or "")
    assert call.response_format is None


def test_chat_parse_coerces_each_type() -> None:
    text = """Sure! Here you go.
[[ ## label ## ]]
'SPAM'

[[## score ##]]
0.75
[[ ## tags ## ]]
```json
["a", "b"]
```
[[ ## person ## ]]
{"name": "Ada", "age": "36"}
[[ ## note ## ]]
  keep it \t
[[ ## completed ## ]]
"""
    out = ChatAdapter().parse(Typed, text)
    assert out == {
        "label": "spam",
        "score": 0.75,
        "tags": ["a", "b"],
        "person": Person(name="Ada", age=36),
        "note": "keep it",
    }


def test_chat_parse_accepts_python_literal_lists() -> None:
    text = "[[ ## answer ## ]]\n4\n[[ ## confident ## ]]\nyes\n"
    assert ChatAdapter().parse(QA, text) == {"answer": 4, "confident": True}
    sig = dsrs.make_signature("q -> items: list[str]")
    assert ChatAdapter().parse(sig, "[[ ## items ## ]]\n['x', 'y']") == {"items": ["x", "y"]}


def test_chat_single_output_accepts_a_bare_answer() -> None:
    sig = dsrs.make_signature("question -> answer")
    assert ChatAdapter().parse(sig, "  Paris  ") == {"answer": "Paris"}


def test_chat_missing_field_is_a_typed_error_naming_it() -> None:
    with pytest.raises(AdapterParseError) as info:
        ChatAdapter().parse(QA, "[[ ## answer ## ]]\n4\n[[ ## completed ## ]]")
    err = info.value
    assert err.missing == ("confident",)
    assert err.field == "confident"
    assert "`confident`" in str(err)
    assert isinstance(err, dsrs.ResponseParseError)
    assert isinstance(err, dsrs.LMError)


def test_chat_bad_value_names_the_field() -> None:
    with pytest.raises(AdapterParseError, match="`answer` is not a valid int") as info:
        ChatAdapter().parse(QA, "[[ ## answer ## ]]\nfour\n[[ ## confident ## ]]\ntrue")
    assert info.value.field == "answer"


def test_inputs_must_match_the_signature() -> None:
    with pytest.raises(SignatureError, match="missing input"):
        ChatAdapter().format(QA, {"question": "x"})
    with pytest.raises(SignatureError, match="unknown input"):
        JSONAdapter().format(QA, {"question": "x", "context": [], "other": 1})


def test_json_adapter_sends_the_schema_as_response_format() -> None:
    call = JSONAdapter().format(QA, {"question": "q", "context": []})
    rf = call.response_format
    assert rf is not None
    assert (rf.type, rf.name, rf.strict) == ("json_schema", "QA", True)
    assert rf.schema == QA.output_json_schema()
    assert "single JSON object" in (call.messages[0].content or "")
    nested = JSONAdapter().format(Typed, {"text": "t"}).response_format
    assert nested is not None and nested.strict is False  # $defs: strict mode would reject the schema


def test_json_parse() -> None:
    a = JSONAdapter()
    assert a.parse(QA, '```json\n{"answer": "4", "confident": true}\n```') == {"answer": 4, "confident": True}
    assert a.parse(QA, 'Here: {"answer": 5, "confident": false} done') == {"answer": 5, "confident": False}
    with pytest.raises(AdapterParseError, match="`confident`") as info:
        a.parse(QA, '{"answer": 4}')
    assert info.value.missing == ("confident",)
    with pytest.raises(AdapterParseError, match="not a JSON object"):
        a.parse(QA, "four")
    with pytest.raises(AdapterParseError, match="`answer` is not a valid int"):
        a.parse(QA, '{"answer": "four", "confident": true}')
