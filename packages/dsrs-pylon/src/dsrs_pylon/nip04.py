"""NIP-04 encryption (as NIP-47 Nostr Wallet Connect uses it): ECDH X coordinate, AES-256-CBC.

``content = base64(ciphertext) + "?iv=" + base64(iv)``; the key is the *unhashed* X coordinate of
the shared point.
"""

from __future__ import annotations

import base64
import binascii
import secrets

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from dsrs_pylon.keys import Keys

__all__ = ["Nip04Error", "decrypt", "encrypt"]


class Nip04Error(ValueError):
    """A NIP-04 payload could not be decrypted."""


def encrypt(keys: Keys, peer_public_key: str, plaintext: str) -> str:
    key = keys.shared_x(peer_public_key)
    iv = secrets.token_bytes(16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext.encode("utf-8")) + padder.finalize()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ciphertext = enc.update(padded) + enc.finalize()
    return base64.b64encode(ciphertext).decode("ascii") + "?iv=" + base64.b64encode(iv).decode("ascii")


def decrypt(keys: Keys, peer_public_key: str, content: str) -> str:
    try:
        body, _, iv_part = content.partition("?iv=")
        ciphertext = base64.b64decode(body, validate=True)
        iv = base64.b64decode(iv_part, validate=True)
        if len(iv) != 16 or not ciphertext or len(ciphertext) % 16:
            raise Nip04Error("malformed NIP-04 payload")
        dec = Cipher(algorithms.AES(keys.shared_x(peer_public_key)), modes.CBC(iv)).decryptor()
        padded = dec.update(ciphertext) + dec.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        return (unpadder.update(padded) + unpadder.finalize()).decode("utf-8")
    except Nip04Error:
        raise
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise Nip04Error(f"cannot decrypt NIP-04 payload: {type(exc).__name__}") from None
