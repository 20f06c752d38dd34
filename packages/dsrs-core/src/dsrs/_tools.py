"""Tools from Python functions: a JSON Schema from the type hints (via pydantic), the description
from the docstring, ``required`` = the parameters without defaults."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, get_type_hints

from dsrs.types import Tool

__all__ = ["as_tools", "tool_from_function"]


def tool_from_function(fn: Callable[..., Any], *, name: str | None = None, strict: bool | None = None) -> Tool:
    """A :class:`~dsrs.types.Tool` describing ``fn`` (its name, docstring and typed parameters)."""
    if not callable(fn):
        raise TypeError(f"a tool must be a dsrs.Tool or a function, got {type(fn).__name__}")
    from pydantic import TypeAdapter, create_model

    sig = inspect.signature(fn)
    try:
        hints = get_type_hints(fn)
    except Exception:  # unresolvable forward references: fall back to the raw annotations
        hints = {}
    fields: dict[str, Any] = {}
    for pname, param in sig.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = hints.get(pname, param.annotation)
        if annotation is inspect.Parameter.empty:
            annotation = Any
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[pname] = (annotation, default)
    fname = name or getattr(fn, "__name__", None) or "tool"
    model = create_model(f"{fname}_arguments", **fields)
    schema = TypeAdapter(model).json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        if isinstance(prop, dict):
            prop.pop("title", None)
    schema.setdefault("required", [])
    doc = inspect.getdoc(fn) or ""
    return Tool(name=fname, description=doc.strip(), parameters=schema, strict=strict)


def as_tools(tools: Sequence[Tool | Callable[..., Any]] | None) -> tuple[Tool, ...]:
    """``tools=`` as :class:`Tool` s: functions are described from their signatures."""
    if not tools:
        return ()
    if isinstance(tools, (Tool, str)) or callable(tools):
        raise TypeError("tools must be a list of dsrs.Tool or functions, e.g. tools=[get_weather]")
    return tuple(t if isinstance(t, Tool) else tool_from_function(t) for t in tools)
