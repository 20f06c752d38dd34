"""NIP-01 events: canonical serialisation, ids, BIP-340 signatures and verification."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import coincurve

from dsrs_pylon.keys import Keys

__all__ = [
    "Event",
    "event_id",
    "first_tag",
    "sign_event",
    "tag_int",
    "tag_values",
    "verify_event",
]

Event = dict[str, Any]
_HEX = frozenset("0123456789abcdef")


def _serialize(pubkey: str, created_at: int, kind: int, tags: Sequence[Sequence[str]], content: str) -> bytes:
    # Compact JSON, UTF-8, no ASCII escaping: the NIP-01 id preimage (same bytes as JSON.stringify/serde_json).
    return json.dumps([0, pubkey, created_at, kind, tags, content], separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def event_id(pubkey: str, created_at: int, kind: int, tags: Sequence[Sequence[str]], content: str) -> str:
    return hashlib.sha256(_serialize(pubkey, created_at, kind, tags, content)).hexdigest()


def sign_event(
    keys: Keys, kind: int, tags: Iterable[Sequence[str]] = (), content: str = "", created_at: int | None = None
) -> Event:
    """A complete signed event."""
    tag_list = [[str(x) for x in t] for t in tags]
    ts = int(time.time()) if created_at is None else int(created_at)
    eid = event_id(keys.public_key, ts, kind, tag_list, content)
    return {
        "id": eid,
        "pubkey": keys.public_key,
        "created_at": ts,
        "kind": kind,
        "tags": tag_list,
        "content": content,
        "sig": keys.sign(bytes.fromhex(eid)).hex(),
    }


def _is_hex(value: object, length: int) -> bool:
    return isinstance(value, str) and len(value) == length and set(value) <= _HEX


def verify_event(event: Mapping[str, Any]) -> bool:
    """True only if the event is well-formed, its id is the hash of its content and the signature verifies."""
    try:
        pubkey, sig, eid = event["pubkey"], event["sig"], event["id"]
        created_at, kind, tags, content = event["created_at"], event["kind"], event["tags"], event["content"]
    except (KeyError, TypeError):
        return False
    if not (_is_hex(pubkey, 64) and _is_hex(sig, 128) and _is_hex(eid, 64)):
        return False
    if not (isinstance(created_at, int) and isinstance(kind, int) and isinstance(content, str)):
        return False
    if not isinstance(tags, list) or not all(isinstance(t, list) and all(isinstance(x, str) for x in t) for t in tags):
        return False
    if event_id(pubkey, created_at, kind, tags, content) != eid:
        return False
    try:
        return bool(coincurve.PublicKeyXOnly(bytes.fromhex(pubkey)).verify(bytes.fromhex(sig), bytes.fromhex(eid)))
    except (ValueError, TypeError):
        return False


def tag_values(event: Mapping[str, Any], name: str) -> list[list[str]]:
    """Every tag named ``name``, each as its list of values after the name."""
    return [list(t[1:]) for t in event.get("tags", ()) if isinstance(t, list) and t and t[0] == name]


def first_tag(event: Mapping[str, Any], name: str) -> list[str] | None:
    found = tag_values(event, name)
    return found[0] if found else None


def tag_int(value: object, maximum: int) -> int | None:
    """A tag value that is a plain decimal integer in ``0..maximum``, else ``None``.

    Hostile tags never raise: ``"²".isdigit()`` is true but ``int("²")`` fails, and ``int()`` of a
    5,000-digit string raises in CPython; only ASCII digits of a bounded length are read.
    """
    if not isinstance(value, str) or not value.isascii() or not value.isdigit() or len(value) > 18:
        return None
    number = int(value)
    return number if number <= maximum else None
