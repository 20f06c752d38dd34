"""Stored API keys: ``dsrs keys set|list|path``, read after the environment.

* Location: ``$DSRS_CONFIG_DIR/keys.json``, else the platform's per-user config directory
  (``$XDG_CONFIG_HOME/dsrs`` or ``~/.config/dsrs`` on Linux, ``~/Library/Application Support/dsrs``
  on macOS, ``%APPDATA%\\dsrs`` on Windows). Directory ``0700``, file ``0600``, replaced atomically.
* Names are environment-variable names (``OPENAI_API_KEY``); a provider's env-var lookup
  (:func:`dsrs.wire.env_first`) falls back to this file when the variable is unset or empty, so an
  exported variable always wins.
* A malformed file warns once (:class:`KeysFileWarning`) and reads as empty: no provider fails to
  build because of it. Values never appear in a repr, a warning or an error.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import warnings
from pathlib import Path

__all__ = [
    "KEYS_FILENAME",
    "KeysFileWarning",
    "config_dir",
    "delete_key",
    "keys_path",
    "load_keys",
    "mask",
    "set_key",
    "stored_key",
]

KEYS_FILENAME = "keys.json"
#: A keys file larger than this is not a keys file (and is not read into memory).
_MAX_FILE_BYTES = 1 << 20
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


class KeysFileWarning(UserWarning):
    """The stored-keys file could not be read; it is treated as empty."""


def config_dir() -> Path:
    """``DSRS_CONFIG_DIR``, else the platform's per-user config directory + ``dsrs``."""
    env = os.environ.get("DSRS_CONFIG_DIR")
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("APPDATA") or str(Path.home() / "AppData" / "Roaming")
        return Path(base) / "dsrs"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "dsrs"
    xdg = os.environ.get("XDG_CONFIG_HOME")
    return (Path(xdg) if xdg else Path.home() / ".config") / "dsrs"


def keys_path() -> Path:
    return config_dir() / KEYS_FILENAME


def check_name(name: str) -> str:
    """Validate a key name (an environment-variable name) and return it."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"key name must be an environment-variable name like OPENAI_API_KEY, got {name!r}")
    return name


# (path, mtime_ns, size) -> parsed keys: env_first() stats the file, and parses it only when it changed.
_cached: tuple[tuple[str, int, int], dict[str, str]] | None = None
_warned: set[tuple[str, int, int]] = set()


def _parse(raw: bytes, where: str) -> dict[str, str]:
    data = json.loads(raw.decode("utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{where} holds a JSON {type(data).__name__}, not an object of name -> key")
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str) and _NAME.fullmatch(k) and v}


def load_keys(*, strict: bool = False) -> dict[str, str]:
    """The stored keys (name -> value). A missing file is empty; a bad one warns (or raises if ``strict``)."""
    global _cached
    path = keys_path()
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except OSError as exc:
        return _unreadable(path, (str(path), 0, 0), f"{type(exc).__name__}: {exc.strerror}", strict)
    stamp = (str(path), st.st_mtime_ns, st.st_size)
    if _cached is not None and _cached[0] == stamp:
        return _cached[1]
    if st.st_size > _MAX_FILE_BYTES:
        return _unreadable(path, stamp, f"{st.st_size} bytes, more than a keys file holds", strict)
    try:
        keys = _parse(path.read_bytes()[:_MAX_FILE_BYTES], str(path))
    except (OSError, ValueError) as exc:  # JSON and UTF-8 errors are ValueErrors
        # The parser's message may quote the file's text (a key): name only the error class.
        return _unreadable(path, stamp, f"not valid JSON ({type(exc).__name__})", strict)
    _cached = (stamp, keys)
    return keys


def _unreadable(path: Path, stamp: tuple[str, int, int], why: str, strict: bool) -> dict[str, str]:
    message = f"dsrs keys: cannot read {path} ({why}); stored keys are ignored. Fix or delete it."
    if strict:
        raise ValueError(message)
    if stamp not in _warned:
        _warned.add(stamp)
        warnings.warn(message, KeysFileWarning, stacklevel=4)
    return {}


def stored_key(name: str) -> str | None:
    """The stored value of ``name``, or ``None`` (the environment is not consulted here)."""
    return load_keys().get(name)


def _write(keys: dict[str, str]) -> Path:
    global _cached
    path = keys_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # A temporary file in the same directory, created 0600 (mkstemp), then renamed over the old
    # one: a reader sees the old or the new file, never half of one, and never a readable mode.
    fd, tmp = tempfile.mkstemp(prefix=".keys-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(dict(sorted(keys.items())), fh, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        if sys.platform != "win32":
            os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _cached = None
    return path


def set_key(name: str, value: str) -> Path:
    """Store ``value`` under ``name`` (replacing any old value); return the file's path."""
    check_name(name)
    value = value.strip() if isinstance(value, str) else ""
    if not value:
        raise ValueError(f"the value for {name} is empty")
    if any(c in value for c in "\r\n\0"):
        raise ValueError(f"the value for {name} contains a line break or NUL; a key is one line")
    keys = dict(load_keys(strict=True))
    keys[name] = value
    return _write(keys)


def delete_key(name: str) -> bool:
    """Remove ``name``; ``False`` when it was not stored."""
    check_name(name)
    keys = dict(load_keys(strict=True))
    if keys.pop(name, None) is None:
        return False
    _write(keys)
    return True


def mask(value: str) -> str:
    """A display form that never shows the secret: its last 4 characters only when it is long."""
    return f"****{value[-4:]}" if len(value) >= 20 else "****"
