"""dsrs._frozen.fast_init: the same constructor as @dataclass(frozen=True, slots=True) generates."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from dataclasses import dataclass, field
from typing import Any

import pytest

from dsrs import LMRequest, LMResponse, LmUsage, Message
from dsrs._frozen import fast_init
from dsrs.transport import HttpRequest, HttpResponse


def _pair() -> tuple[type[Any], type[Any]]:
    """The same class twice: with dataclass's own __init__ and with fast_init's."""

    def make() -> type[Any]:
        @dataclass(frozen=True, slots=True)
        class Point:
            x: int
            y: int = 2
            tags: list[str] = field(default_factory=list)
            hidden: int = field(default=7, init=False)
            made: list[int] = field(default_factory=lambda: [1], init=False)
            label: str = field(default="p", kw_only=True)
            seen: list[str] = field(default_factory=list, init=False, compare=False, repr=False)

            def __post_init__(self) -> None:
                if self.x < 0:
                    raise ValueError("x must not be negative")
                self.seen.append("post")

        return Point

    return make(), fast_init(make())


def test_signature_defaults_and_values_match_dataclass() -> None:
    plain, fast = _pair()
    assert str(inspect.signature(fast)) == str(inspect.signature(plain))
    cases: list[tuple[tuple[int, ...], dict[str, Any]]] = [
        ((1,), {}),
        ((1, 5), {"tags": ["a"], "label": "q"}),
        ((3,), {"y": 0}),
    ]
    for args, kwargs in cases:
        a, b = plain(*args, **kwargs), fast(*args, **kwargs)
        assert dataclasses.asdict(a) == dataclasses.asdict(b)
        assert repr(a).replace(plain.__qualname__, "") == repr(b).replace(fast.__qualname__, "")
    assert fast(1).seen == ["post"]  # __post_init__ ran
    with pytest.raises(ValueError, match="negative"):
        fast(-1)


def test_default_factories_give_each_instance_its_own_value() -> None:
    _, fast = _pair()
    a, b = fast(1), fast(1)
    a.tags.append("x")
    assert b.tags == [] and a.made is not b.made


def test_still_frozen_hashable_and_picklable() -> None:
    _, fast = _pair()
    p = fast(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 2
    usage = LmUsage(prompt_tokens=3, completion_tokens=4, total_tokens=7)
    assert hash(usage) == hash(LmUsage(prompt_tokens=3, completion_tokens=4, total_tokens=7))
    assert pickle.loads(pickle.dumps(usage)) == usage
    with pytest.raises(TypeError):
        LmUsage(1, 2, 3, 4, 5, 6, 7, 8.0, False, 1, {}, "one too many")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="missing"):
        HttpRequest("GET")  # type: ignore[call-arg]


def test_the_call_path_types_use_it() -> None:
    for cls in (Message, LMRequest, LMResponse, LmUsage, HttpRequest, HttpResponse):
        assert cls.__init__.__module__ == cls.__module__
        assert cls.__init__.__qualname__ == f"{cls.__qualname__}.__init__"
        assert "_set_" in " ".join(cls.__init__.__code__.co_names)  # slots set directly
    assert dataclasses.replace(LMResponse("a"), text="b").text == "b"
    with pytest.raises(ValueError, match="role"):
        Message("robot", "hi")  # type: ignore[arg-type]


def test_refuses_what_it_cannot_speed_up() -> None:
    @dataclass(slots=True)
    class Mutable:
        x: int = 0

    @dataclass(frozen=True)
    class NoSlots:
        x: int = 0

    for cls in (Mutable, NoSlots, int):
        with pytest.raises(TypeError, match="frozen, slotted dataclass"):
            fast_init(cls)
