"""NIP-44 v2 on the published vectors (nostr-tools' nip44.vectors.json), plus interop with nostr-sdk."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from dsrs_pylon import nip44
from dsrs_pylon.keys import Keys

VECTORS: dict[str, Any] = json.loads((Path(__file__).parent / "fixtures" / "nip44.vectors.json").read_text("utf-8"))[
    "v2"
]
VALID, INVALID = VECTORS["valid"], VECTORS["invalid"]


def _pub(sec_hex: str) -> bytes:
    return bytes.fromhex(Keys(bytes.fromhex(sec_hex)).public_key)


@pytest.mark.parametrize("v", VALID["get_conversation_key"], ids=lambda v: v["note"])
def test_conversation_key_vectors(v: dict[str, str]) -> None:
    key = nip44.get_conversation_key(bytes.fromhex(v["sec1"]), bytes.fromhex(v["pub2"]))
    assert key.hex() == v["conversation_key"]


@pytest.mark.parametrize("v", VALID["encrypt_decrypt"], ids=lambda v: v["plaintext"][:8])
def test_encrypt_decrypt_vectors(v: dict[str, str]) -> None:
    key = nip44.get_conversation_key(bytes.fromhex(v["sec1"]), _pub(v["sec2"]))
    assert key.hex() == v["conversation_key"]
    assert nip44.get_conversation_key(bytes.fromhex(v["sec2"]), _pub(v["sec1"])) == key  # symmetric
    assert nip44.encrypt(v["plaintext"], key, bytes.fromhex(v["nonce"])) == v["ciphertext"]
    assert nip44.decrypt(v["ciphertext"], key) == v["plaintext"]


@pytest.mark.parametrize("v", VALID["encrypt_decrypt_long_msg"], ids=lambda v: v["note"])
def test_long_message_vector(v: dict[str, Any]) -> None:
    # This entry of the file still carries a draft-era key (and no checksum): derive the key instead.
    key = nip44.get_conversation_key(bytes.fromhex(v["sec1"]), bytes.fromhex(v["pub2"]))
    text = v["letter"] * v["repeat"]  # 131,070 bytes of UTF-8: over the 65,535-byte limit
    with pytest.raises(nip44.Nip44Error, match="plaintext length 131070"):
        nip44.encrypt(text, key, bytes.fromhex(v["nonce"]))
    half = v["letter"] * (v["repeat"] // 2)
    assert nip44.decrypt(nip44.encrypt(half, key, bytes.fromhex(v["nonce"])), key) == half


@pytest.mark.parametrize(("unpadded", "padded"), VALID["calc_padded_len"])
def test_padding_vectors(unpadded: int, padded: int) -> None:
    assert nip44.calc_padded_len(unpadded) == padded


@pytest.mark.parametrize("length", INVALID["encrypt_msg_lengths"])
def test_invalid_encrypt_lengths(length: int) -> None:
    with pytest.raises(nip44.Nip44Error, match=f"plaintext length {length}"):
        nip44.encrypt("a" * length, bytes(range(32)))


@pytest.mark.parametrize("length", INVALID["decrypt_msg_lengths"])
def test_invalid_decrypt_lengths(length: int) -> None:
    with pytest.raises(nip44.Nip44Error, match="payload size"):
        nip44.decrypt("A" * length, bytes(range(32)))


@pytest.mark.parametrize("v", INVALID["get_conversation_key"], ids=lambda v: v["note"])
def test_invalid_conversation_key_vectors(v: dict[str, str]) -> None:
    with pytest.raises(nip44.Nip44Error, match=r"invalid (secret|public) key"):
        nip44.get_conversation_key(bytes.fromhex(v["sec1"]), bytes.fromhex(v["pub2"]))


@pytest.mark.parametrize("v", INVALID["decrypt"], ids=lambda v: v["note"])
def test_invalid_decrypt_vectors(v: dict[str, str]) -> None:
    with pytest.raises(nip44.Nip44Error, match=v["note"]):
        nip44.decrypt(v["ciphertext"], bytes.fromhex(v["conversation_key"]))


def test_message_lengths_are_bounded() -> None:
    key = bytes(range(32))
    with pytest.raises(nip44.Nip44Error, match="plaintext length 0"):
        nip44.encrypt("", key)
    with pytest.raises(nip44.Nip44Error, match="plaintext length 65536"):
        nip44.encrypt("x" * 65_536, key)
    longest = nip44.encrypt("x" * 65_535, key)
    assert nip44.decrypt(longest, key) == "x" * 65_535
    assert len(longest) == 87_472  # the spec's largest payload
    with pytest.raises(nip44.Nip44Error, match="payload size"):
        nip44.decrypt("A" * 87_476, key)
    with pytest.raises(nip44.Nip44Error, match="payload size"):
        nip44.decrypt("Ag==", key)
    with pytest.raises(nip44.Nip44Error, match="a string expected"):
        nip44.decrypt(b"Ag==", key)  # type: ignore[arg-type]


def test_tampering_anywhere_is_detected() -> None:
    key = bytes(range(32))
    data = bytearray(base64.b64decode(nip44.encrypt("tamper with me", key)))
    for i in (0, 1, 40, len(data) - 33, len(data) - 1):  # version, nonce, ciphertext, mac
        bad = bytearray(data)
        bad[i] ^= 0x01
        with pytest.raises(nip44.Nip44Error, match=r"version|MAC"):
            nip44.decrypt(base64.b64encode(bytes(bad)).decode(), key)
    with pytest.raises(nip44.Nip44Error, match="MAC"):
        nip44.decrypt(base64.b64encode(bytes(data)).decode(), bytes(32))  # the wrong key


def test_random_nonces_differ() -> None:
    key = bytes(range(32))
    assert nip44.encrypt("same", key) != nip44.encrypt("same", key)


def test_interop_with_nostr_sdk() -> None:
    """An independent implementation (rust-nostr) decrypts ours and we decrypt its payloads."""
    nostr_sdk = pytest.importorskip("nostr_sdk")
    alice, bob = Keys.generate(), Keys.generate()
    key = alice.conversation_key(bob.public_key)
    payload = nip44.encrypt("private prompt ✓ 😀", key)
    sdk_bob = nostr_sdk.SecretKey.parse(bob.secret_hex())
    sdk_alice = nostr_sdk.PublicKey.parse(alice.public_key)
    assert nostr_sdk.nip44_decrypt(sdk_bob, sdk_alice, payload) == "private prompt ✓ 😀"
    theirs = nostr_sdk.nip44_encrypt(sdk_bob, sdk_alice, "from rust", nostr_sdk.Nip44Version.V2)
    assert nip44.decrypt(theirs, bob.conversation_key(alice.public_key)) == "from rust"
