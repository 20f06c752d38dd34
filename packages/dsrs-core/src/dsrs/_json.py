"""JSON encode/decode: orjson when installed (the ``fast`` extra), else the standard library."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["JSONDecodeError", "dumps", "loads"]

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None  # type: ignore[assignment]

JSONDecodeError: tuple[type[Exception], ...]

if _orjson is not None:
    JSONDecodeError = (_orjson.JSONDecodeError, json.JSONDecodeError, UnicodeDecodeError)

    #: Compact UTF-8 JSON bytes (orjson's own functions, bound directly: these run on every call).
    dumps: Callable[[Any], bytes] = _orjson.dumps
    loads: Callable[[bytes | str], Any] = _orjson.loads

else:  # pragma: no cover
    JSONDecodeError = (json.JSONDecodeError, UnicodeDecodeError)

    def dumps(obj: Any) -> bytes:
        """Compact UTF-8 JSON bytes."""
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def loads(data: bytes | str) -> Any:
        return json.loads(data)
