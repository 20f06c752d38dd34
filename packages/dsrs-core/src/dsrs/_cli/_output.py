"""Small output helpers shared by the subcommands."""

from __future__ import annotations

import json
import sys
from typing import Any

__all__ = ["print_json", "read_stdin", "safe"]

#: A prompt read from stdin larger than this is refused rather than held in memory.
MAX_STDIN_BYTES = 16 << 20


# C0 and C1 control characters except newline and tab: a server's text (a model id, a logged answer)
# must not move the cursor, retitle the terminal or hide the lines around it when shown in a table.
_CONTROLS = {c: "\ufffd" for c in (*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0))}


def safe(text: object, *, newlines: bool = True) -> str:
    """``text`` for a terminal: control characters shown as U+FFFD (newlines too unless ``newlines``)."""
    out = str(text).translate(_CONTROLS)
    return out if newlines else out.replace("\n", "\ufffd")


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=False, default=str, ensure_ascii=False))


def read_stdin(what: str) -> str | None:
    """All of stdin as text when it is not a terminal (``None`` when it is, or is closed)."""
    from dsrs._cli._exit import UsageError

    stream = sys.stdin
    if stream is None or stream.closed:
        return None
    try:
        if stream.isatty():
            return None
    except (OSError, ValueError):
        return None
    data = stream.buffer.read(MAX_STDIN_BYTES + 1)
    if len(data) > MAX_STDIN_BYTES:
        raise UsageError(f"{what} on stdin is larger than {MAX_STDIN_BYTES >> 20} MiB")
    return data.decode("utf-8", "replace")
