"""Checks of what users pass in, with errors that name the parameter and the value.

Every LM setting, per-call override, LaneMux and budget argument is checked where it enters, so a
wrong value fails at once with ``InvalidValueError`` / ``InvalidTypeError`` (subclasses of
``ValueError`` / ``TypeError``, exported by dsrs) instead of reaching a server or a pydantic message.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "InvalidTypeError",
    "InvalidValueError",
    "UnknownParameterError",
    "check_max_tokens",
    "check_msats",
    "check_stop",
    "check_temperature",
    "closest",
    "unknown_keywords",
]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class InvalidValueError(ValueError):
    """A parameter has a value of the right type but outside what is allowed."""

    def __init__(self, parameter: str, value: Any, expected: str) -> None:
        self.parameter = parameter
        self.value = value
        super().__init__(f"{parameter} must be {expected}, got {_show(value)}")


class InvalidTypeError(TypeError):
    """A parameter has a value of the wrong type."""

    def __init__(self, parameter: str, value: Any, expected: str) -> None:
        self.parameter = parameter
        self.value = value
        super().__init__(f"{parameter} must be {expected}, got {type(value).__name__} {_show(value)}")


class UnknownParameterError(TypeError):
    """A keyword argument that is not a parameter (``suggestion`` is the closest one, if any)."""

    def __init__(self, where: str, parameter: str, suggestion: str | None, hint: str = "") -> None:
        self.parameter = parameter
        self.suggestion = suggestion
        did = f"; did you mean {suggestion!r}?" if suggestion else ""
        super().__init__(f"{where} got an unexpected keyword argument {parameter!r}{did}{hint}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(name: str, value: Any, *, minimum: int | None = None) -> int | None:
    if value is None:
        return None
    if not _is_int(value):
        raise InvalidTypeError(name, value, "an int" if minimum is None else f"an int >= {minimum}")
    if minimum is not None and value < minimum:
        raise InvalidValueError(name, value, f"an int >= {minimum}")
    return int(value)


def check_max_tokens(value: Any, name: str = "max_tokens") -> int | None:
    return check_int(name, value, minimum=1)


def check_msats(name: str, value: Any) -> int | None:
    return check_int(name, value, minimum=0)


def check_number(name: str, value: Any, *, low: float = 0.0, high: float | None = None) -> float | None:
    if value is None:
        return None
    rng = f"a finite number >= {low:g}" + (f" and <= {high:g}" if high is not None else "")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidTypeError(name, value, rng)
    if not math.isfinite(value) or value < low or (high is not None and value > high):
        raise InvalidValueError(name, value, rng)
    return float(value)


def check_temperature(value: Any, name: str = "temperature") -> float | None:
    # The widest range any supported API accepts (OpenAI 0-2; Anthropic 0-1; Gemini 0-2).
    return check_number(name, value, low=0.0, high=2.0)


def check_stop(value: Any, name: str = "stop") -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        items = tuple(value)
        if all(isinstance(s, str) for s in items):
            return items or None
    raise InvalidTypeError(name, value, "a str or a list of str")


def closest(name: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    found = difflib.get_close_matches(name, list(choices), n=1, cutoff=cutoff)
    return found[0] if found else None


def unknown_keywords(where: str, given: Iterable[str], allowed: Iterable[str]) -> str:
    """The message for keyword arguments that are not parameters of ``where``."""
    allowed = sorted(set(allowed))
    parts = []
    for name in given:
        match = closest(name, allowed)
        parts.append(f"{name!r}" + (f" (did you mean {match!r}?)" if match else ""))
    return f"{where} got unexpected keyword argument(s) {', '.join(parts)}"
