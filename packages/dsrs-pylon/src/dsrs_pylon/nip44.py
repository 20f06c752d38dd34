"""NIP-44 version 2 encrypted payloads: secp256k1 ECDH, HKDF-SHA256, padding, ChaCha20, HMAC-SHA256.

Implemented from the NIP-44 text (https://github.com/nostr-protocol/nips/blob/master/44.md) with
maintained primitives only: ECDH from coincurve (libsecp256k1), ChaCha20 and HKDF-Expand from
``cryptography``, HKDF-Extract and HMAC-SHA256 from the standard library.

``payload = base64(0x02 || nonce[32] || ciphertext || mac[32])``; the conversation key is
``HKDF-Extract(salt="nip44-v2", IKM=shared_x)`` and is the same in both directions.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

import coincurve
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

__all__ = [
    "MAX_PLAINTEXT_BYTES",
    "MIN_PLAINTEXT_BYTES",
    "VERSION",
    "Nip44Error",
    "calc_padded_len",
    "decrypt",
    "encrypt",
    "get_conversation_key",
    "get_message_keys",
    "shared_x",
]

VERSION = 2
MIN_PLAINTEXT_BYTES = 1
MAX_PLAINTEXT_BYTES = 65_535
_SALT = b"nip44-v2"
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
# Bounds of the spec's decode step: base64 text 132..87472 characters, decoded 99..65603 bytes.
_MIN_PAYLOAD_CHARS, _MAX_PAYLOAD_CHARS = 132, 87_472
_MIN_DATA_BYTES, _MAX_DATA_BYTES = 99, 65_603


class Nip44Error(ValueError):
    """A NIP-44 key, plaintext or payload is invalid (the message never holds key material)."""


def shared_x(secret: bytes, public_x: bytes) -> bytes:
    """The unhashed X coordinate of ``secret`` times the even-y point with X = ``public_x`` (ECDH)."""
    if len(secret) != 32 or not 0 < int.from_bytes(secret, "big") < _N:
        raise Nip44Error("invalid secret key: a secret is 32 bytes in 1..n-1")
    if len(public_x) != 32:
        raise Nip44Error(f"invalid public key: an x-only key is 32 bytes, got {len(public_x)}")
    try:
        point = coincurve.PublicKey(b"\x02" + public_x)  # lift_x with even y, as the spec says
    except ValueError:
        raise Nip44Error(f"invalid public key {public_x.hex()[:16]}…: not on the secp256k1 curve") from None
    return bytes(point.multiply(secret).format(compressed=True)[1:33])


def get_conversation_key(secret: bytes, public_x: bytes) -> bytes:
    """The 32-byte conversation key of ``secret`` (32-byte scalar) and a peer's x-only public key."""
    return hmac.new(_SALT, shared_x(secret, public_x), hashlib.sha256).digest()  # HKDF-Extract(salt, IKM)


def get_message_keys(conversation_key: bytes, nonce: bytes) -> tuple[bytes, bytes, bytes]:
    """``(chacha_key, chacha_nonce, hmac_key)`` = HKDF-Expand(conversation_key, info=nonce, 76)."""
    if len(conversation_key) != 32:
        raise Nip44Error(f"invalid conversation key: 32 bytes expected, got {len(conversation_key)}")
    if len(nonce) != 32:
        raise Nip44Error(f"invalid nonce: 32 bytes expected, got {len(nonce)}")
    keys = HKDFExpand(algorithm=hashes.SHA256(), length=76, info=nonce).derive(conversation_key)
    return keys[0:32], keys[32:44], keys[44:76]


def calc_padded_len(unpadded_len: int) -> int:
    """Padded length of a plaintext of ``unpadded_len`` bytes (32-byte minimum, then power-of-two chunks)."""
    if unpadded_len < MIN_PLAINTEXT_BYTES:
        raise Nip44Error(f"invalid plaintext length {unpadded_len}: at least 1 byte")
    if unpadded_len <= 32:
        return 32
    next_power = 1 << (unpadded_len - 1).bit_length()
    chunk = 32 if next_power <= 256 else next_power // 8
    return chunk * ((unpadded_len - 1) // chunk + 1)


def _pad(plaintext: str) -> bytes:
    raw = plaintext.encode("utf-8")
    if not MIN_PLAINTEXT_BYTES <= len(raw) <= MAX_PLAINTEXT_BYTES:
        raise Nip44Error(f"invalid plaintext length {len(raw)} bytes: NIP-44 encrypts 1..65535 bytes")
    return len(raw).to_bytes(2, "big") + raw + bytes(calc_padded_len(len(raw)) - len(raw))


def _unpad(padded: bytes) -> str:
    length = int.from_bytes(padded[:2], "big")
    body = padded[2 : 2 + length]
    if length == 0 or len(body) != length or len(padded) != 2 + calc_padded_len(length):
        raise Nip44Error("invalid padding")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise Nip44Error("invalid plaintext: not UTF-8") from None


def _chacha20(key: bytes, nonce12: bytes, data: bytes) -> bytes:
    # cryptography's ChaCha20 takes a 16-byte nonce: a 4-byte little-endian counter (0), then the RFC 8439 nonce.
    return Cipher(algorithms.ChaCha20(key, b"\x00\x00\x00\x00" + nonce12), mode=None).encryptor().update(data)


def _mac(hmac_key: bytes, nonce: bytes, ciphertext: bytes) -> bytes:
    return hmac.new(hmac_key, nonce + ciphertext, hashlib.sha256).digest()  # the nonce is the AAD


def encrypt(plaintext: str, conversation_key: bytes, nonce: bytes | None = None) -> str:
    """The base64 payload of ``plaintext``; ``nonce`` (32 bytes) is random unless given (tests only)."""
    nonce = secrets.token_bytes(32) if nonce is None else nonce
    chacha_key, chacha_nonce, hmac_key = get_message_keys(conversation_key, nonce)
    ciphertext = _chacha20(chacha_key, chacha_nonce, _pad(plaintext))
    data = bytes([VERSION]) + nonce + ciphertext + _mac(hmac_key, nonce, ciphertext)
    return base64.b64encode(data).decode("ascii")


def _decode(payload: str) -> tuple[bytes, bytes, bytes]:
    if not isinstance(payload, str):
        raise Nip44Error(f"invalid payload: a string expected, got {type(payload).__name__}")
    if payload.startswith("#"):
        raise Nip44Error("unknown encryption version (payload starts with '#')")
    if not _MIN_PAYLOAD_CHARS <= len(payload) <= _MAX_PAYLOAD_CHARS:
        raise Nip44Error(f"invalid payload size: {len(payload)} characters (132..87472)")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise Nip44Error("invalid base64 in the payload") from None
    if not _MIN_DATA_BYTES <= len(data) <= _MAX_DATA_BYTES:
        raise Nip44Error(f"invalid data size: {len(data)} bytes (99..65603)")
    if data[0] != VERSION:
        raise Nip44Error(f"unknown encryption version {data[0]}")
    return data[1:33], data[33:-32], data[-32:]


def decrypt(payload: str, conversation_key: bytes) -> str:
    """The plaintext of a base64 payload; :class:`Nip44Error` when anything does not verify."""
    nonce, ciphertext, mac = _decode(payload)
    chacha_key, chacha_nonce, hmac_key = get_message_keys(conversation_key, nonce)
    if not hmac.compare_digest(_mac(hmac_key, nonce, ciphertext), mac):  # constant time
        raise Nip44Error("invalid MAC")
    return _unpad(_chacha20(chacha_key, chacha_nonce, ciphertext))
