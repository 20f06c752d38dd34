"""Bech32 (BIP-173) encoding, as used by ``npub``/``nsec`` (NIP-19) and BOLT-11 invoices.

No length limit: BOLT-11 invoices are longer than BIP-173's 90 characters.
"""

from __future__ import annotations

__all__ = ["Bech32Error", "bech32_decode", "bech32_encode", "convertbits"]

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_CHARSET_REV = {c: i for i, c in enumerate(CHARSET)}
_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


class Bech32Error(ValueError):
    """A string is not valid bech32 (bad character, mixed case, or checksum)."""


def _polymod(values: list[int]) -> int:
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= _GEN[i] if ((top >> i) & 1) else 0
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(x) >> 5 for x in hrp] + [0] + [ord(x) & 31 for x in hrp]


def bech32_encode(hrp: str, data: list[int]) -> str:
    """Encode 5-bit ``data`` under the human-readable part ``hrp``."""
    values = _hrp_expand(hrp) + data
    polymod = _polymod([*values, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(CHARSET[d] for d in data + checksum)


def bech32_decode(text: str) -> tuple[str, list[int]]:
    """Return ``(hrp, 5-bit data without checksum)``; raise :class:`Bech32Error` when invalid."""
    if not isinstance(text, str) or not text:
        raise Bech32Error("empty bech32 string")
    if text.lower() != text and text.upper() != text:
        raise Bech32Error("mixed-case bech32 string")
    text = text.lower()
    pos = text.rfind("1")
    if pos < 1 or pos + 7 > len(text):
        raise Bech32Error("bech32 separator '1' missing or misplaced")
    if any(ord(c) < 33 or ord(c) > 126 for c in text):
        raise Bech32Error("bech32 string has characters out of range")
    hrp = text[:pos]
    try:
        data = [_CHARSET_REV[c] for c in text[pos + 1 :]]
    except KeyError as exc:
        raise Bech32Error(f"invalid bech32 character {exc.args[0]!r}") from None
    if _polymod(_hrp_expand(hrp) + data) != 1:
        raise Bech32Error("bech32 checksum mismatch")
    return hrp, data[:-6]


def convertbits(data: list[int] | bytes, frombits: int, tobits: int, pad: bool = True) -> list[int]:
    """Regroup ``data`` from ``frombits``-bit to ``tobits``-bit integers."""
    acc = 0
    bits = 0
    out: list[int] = []
    maxv = (1 << tobits) - 1
    for value in data:
        if value < 0 or value >> frombits:
            raise Bech32Error("value out of range in bit conversion")
        acc = (acc << frombits) | value
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (tobits - bits)) & maxv)
    elif bits >= frombits or ((acc << (tobits - bits)) & maxv):
        raise Bech32Error("invalid padding in bit conversion")
    return out
