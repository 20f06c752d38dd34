"""Inputs checked at the door: every LM setting, per-call override, LaneMux argument and message is
validated where it enters, with an error naming the parameter and the value — never a raw pydantic
message, a bare KeyError, or a value sent to the server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import dsrs
from dsrs.testing import openai_wire_server

LM = dsrs.LM

BAD: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    (
        "max_tokens=-1",
        lambda: LM("fake:echo", max_tokens=-1),
        dsrs.InvalidValueError,
        "max_tokens must be an int >= 1, got -1",
    ),
    ("max_tokens=2.5", lambda: LM("fake:echo", max_tokens=2.5), dsrs.InvalidTypeError, "max_tokens"),
    ("temperature=inf", lambda: LM("fake:echo", temperature=float("inf")), dsrs.InvalidValueError, "temperature"),
    ("temperature='hot'", lambda: LM("fake:echo", temperature="hot"), dsrs.InvalidTypeError, "temperature"),
    ("temperature=-1", lambda: LM("fake:echo", temperature=-1), dsrs.InvalidValueError, "temperature"),
    ("stop=123", lambda: LM("fake:echo", stop=123), dsrs.InvalidTypeError, "stop must be a str or a list of str"),
    ("stop=[1]", lambda: LM("fake:echo", stop=[1]), dsrs.InvalidTypeError, "stop"),
    ("seed='x'", lambda: LM("fake:echo", seed="x"), dsrs.InvalidTypeError, "seed"),
    ("timeout=0", lambda: LM("fake:echo", timeout=0), dsrs.InvalidValueError, "timeout"),
    ("model=''", lambda: LM(""), dsrs.InvalidValueError, "model must not be empty"),
    ("model='openai:'", lambda: LM("openai:"), dsrs.InvalidValueError, "model"),
    ("model=42", lambda: LM(42), dsrs.InvalidTypeError, "model"),  # type: ignore[arg-type]
    ("no model", lambda: LM(), TypeError, "needs a model"),
    ("temprature=", lambda: LM("fake:echo", temprature=0.5), dsrs.UnknownParameterError, "did you mean 'temperature'"),
    ("max_token=", lambda: LM("fake:echo").with_options(max_token=3), dsrs.UnknownParameterError, "max_tokens"),
    ("num_ctx='8192'", lambda: LM("fake:echo").with_num_ctx("8192"), dsrs.InvalidTypeError, "num_ctx"),  # type: ignore[arg-type]
    ("call(None)", lambda: LM("fake:echo").call(None), dsrs.InvalidTypeError, "messages must be"),  # type: ignore[arg-type]
    ("call(42)", lambda: LM("fake:echo").call(42), dsrs.InvalidTypeError, "messages"),  # type: ignore[arg-type]
    ("call([42])", lambda: LM("fake:echo").call([42]), dsrs.InvalidTypeError, "messages[0]"),  # type: ignore[list-item]
    ("no role", lambda: LM("fake:echo").call([{"content": "x"}]), ValueError, "needs a 'role'"),
    (
        "bad tool call",
        lambda: LM("fake:echo").call([{"role": "assistant", "tool_calls": [{"id": "1"}]}]),
        ValueError,
        "needs a 'name'",
    ),
    ("per-call max_tokens=-1", lambda: LM("fake:echo").call("x", max_tokens=-1), dsrs.InvalidValueError, "max_tokens"),
    (
        "per-call temperature='hot'",
        lambda: LM("fake:echo").call("x", temperature="hot"),
        dsrs.InvalidTypeError,
        "temperature",
    ),
    (
        "budget_msats='lots'",
        lambda: dsrs.LaneMux().add_lane("a", "fake:echo", budget_msats="lots"),
        dsrs.InvalidTypeError,
        "budget_msats",
    ),  # type: ignore[arg-type]
    ("LaneMux(budget_msats=-1)", lambda: dsrs.LaneMux(budget_msats=-1), dsrs.InvalidValueError, "budget_msats"),
    (
        "mux max_tokens='many'",
        lambda: dsrs.LaneMux().add_lane("a", "fake:echo").call("x", max_tokens="many"),
        dsrs.InvalidTypeError,
        "max_tokens",
    ),
    ("retries=-1", lambda: LM("fake:echo", retries=-1), dsrs.InvalidValueError, "retries"),
]


@pytest.mark.parametrize(("what", "make", "error", "says"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_names_the_parameter(what: str, make: Callable[[], Any], error: type[Exception], says: str) -> None:
    with pytest.raises(error) as info:
        make()
    text = str(info.value)
    assert says in text
    assert "pydantic" not in text and "validation error for" not in text


def test_the_typed_errors_are_value_and_type_errors() -> None:
    assert issubclass(dsrs.InvalidValueError, ValueError)
    assert issubclass(dsrs.InvalidTypeError, TypeError)
    assert issubclass(dsrs.UnknownParameterError, TypeError)


def test_model_as_a_keyword_works() -> None:
    assert LM(model="fake:echo").call("kw").text == "kw"
    with pytest.raises(TypeError, match="twice"):
        LM("fake:echo", model="fake:echo")


def test_provider_options_that_are_not_typos_pass() -> None:
    lm = LM("fake:echo", top_p=0.9, num_ctx=2048)
    assert lm.options == {"top_p": 0.9, "num_ctx": 2048}


def test_a_bad_per_call_value_is_never_sent() -> None:
    with openai_wire_server() as srv:
        lm = LM("m", base_url=srv.url)
        for kwargs in ({"max_tokens": -1}, {"temperature": "hot"}, {"stop": 5}):
            with pytest.raises((ValueError, TypeError)):
                lm.call("x", **kwargs)
        assert srv.requests == []
        lm.call("x", max_tokens=7, temperature=0.5, stop="END")
        body = srv.requests[-1].json()
        assert body["max_tokens"] == 7 and body["temperature"] == 0.5 and body["stop"] == ["END"]
