"""Encrypting event content to one peer: NIP-44 v2 (preferred) or NIP-04 (legacy), by name.

Names are NIP-47's (``nip44_v2``, ``nip04``), used in the ``encryption`` tags of wallet info events
and requests, and in this package's NIP-89 announcements. A payload's scheme can be told from its
shape (NIP-04 carries ``?iv=``), so decryption needs no name.
"""

from __future__ import annotations

from collections.abc import Iterable

from dsrs_pylon import nip04, nip44
from dsrs_pylon.keys import Keys

__all__ = [
    "NIP04",
    "NIP44",
    "SCHEMES",
    "EncryptionError",
    "choose",
    "decrypt_from",
    "encrypt_to",
    "parse_tag",
    "scheme_of",
]

NIP44 = "nip44_v2"
NIP04 = "nip04"
#: Supported schemes, most preferred first.
SCHEMES = (NIP44, NIP04)


class EncryptionError(ValueError):
    """Content could not be encrypted or decrypted (never shows the plaintext or a key)."""


def choose(offered: Iterable[str]) -> str | None:
    """The best scheme both sides speak: NIP-44 when offered, NIP-04 only as the fallback."""
    names = set(offered)
    return next((s for s in SCHEMES if s in names), None)


def parse_tag(value: str | None) -> tuple[str, ...]:
    """The schemes of an ``encryption`` tag value (space-separated, NIP-47)."""
    return tuple(v for v in (value or "").split() if v)


def scheme_of(content: str) -> str:
    return NIP04 if "?iv=" in content else NIP44


def encrypt_to(keys: Keys, peer_public_key: str, plaintext: str, scheme: str = NIP44) -> str:
    if scheme == NIP44:
        try:
            return nip44.encrypt(plaintext, keys.conversation_key(peer_public_key))
        except ValueError as exc:  # Nip44Error, or a peer key that is not hex
            raise EncryptionError(f"cannot encrypt with NIP-44: {exc}") from None
    if scheme == NIP04:
        return nip04.encrypt(keys, peer_public_key, plaintext)
    raise EncryptionError(f"unknown encryption scheme {scheme!r}; use one of {list(SCHEMES)}")


def decrypt_from(keys: Keys, peer_public_key: str, content: str, scheme: str | None = None) -> str:
    """The plaintext of ``content`` from ``peer_public_key``; ``scheme`` (if given) must match its shape."""
    if not isinstance(content, str) or not content:
        raise EncryptionError("no encrypted content")
    found = scheme_of(content)
    if scheme is not None and found != scheme:
        raise EncryptionError(f"expected {scheme} content, got {found}")
    try:
        if found == NIP04:
            return nip04.decrypt(keys, peer_public_key, content)
        return nip44.decrypt(content, keys.conversation_key(peer_public_key))
    except (nip04.Nip04Error, nip44.Nip44Error, ValueError) as exc:
        raise EncryptionError(f"cannot decrypt {found} content: {exc}") from None
