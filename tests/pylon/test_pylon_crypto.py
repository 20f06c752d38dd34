"""Keys (NIP-06, NIP-19), events (NIP-01, BIP-340), BOLT-11 and NIP-04, against published vectors."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

import pytest

from dsrs_pylon import bolt11, nip04
from dsrs_pylon.bech32 import Bech32Error, bech32_decode
from dsrs_pylon.event import sign_event, verify_event
from dsrs_pylon.keys import InvalidKeyError, Keys, load_keys, npub_to_hex
from dsrs_pylon.testing import LoopbackRelay

# NIP-06 test vectors (nostr-protocol/nips 06.md).
NIP06 = [
    (
        "leader monkey parrot ring guide accident before fence cannon height naive bean",
        "7f7ff03d123792d6ac594bfa67bf6d0c0ab55b6b1fdb6249303fe861f1ccba9a",
        "nsec10allq0gjx7fddtzef0ax00mdps9t2kmtrldkyjfs8l5xruwvh2dq0lhhkp",
        "17162c921dc4d2518f9a101db33695df1afb56ab82f5ff3e5da6eec3ca5cd917",
        "npub1zutzeysacnf9rru6zqwmxd54mud0k44tst6l70ja5mhv8jjumytsd2x7nu",
    ),
    (
        "what bleak badge arrange retreat wolf trade produce cricket blur garlic valid proud rude strong choose "
        "busy staff weather area salt hollow arm fade",
        "c15d739894c81a2fcfd3a2df85a0d2c0dbc47a280d092799f144d73d7ae78add",
        "nsec1c9wh8xy5eqdzln7n5t0ctgxjcrdug73gp5yj0x03gntn67h83twssdfhel",
        "d41b22899549e1f3d335a31002cfd382174006e166d3e658e3a5eecdb6463573",
        "npub16sdj9zv4f8sl85e45vgq9n7nsgt5qphpvmf7vk8r5hhvmdjxx4es8rq74h",
    ),
]

# BOLT-11 examples (lightning/bolts 11-payment-encoding.md), signed by node
# 03e7156ae33b0a208d0744199163177e909e80176e55d97a2f221ede0f934dd9ad.
PAYEE = "03e7156ae33b0a208d0744199163177e909e80176e55d97a2f221ede0f934dd9ad"
HASH = "0001020304050607080900010203040506070809000102030405060708090102"
DONATION = (
    "lnbc1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcy"
    "q5rqwzqfqypqdpl2pkx2ctnv5sxxmmwwd5kgetjypeh2ursdae8g6twvus8g6rfwvs8qun0dfjkxaq9qrsgq357wnc5r2ueh7ck6q93dj32dl"
    "qnls087fxdwk8qakdyafkq3yap9us6v52vjjsrvywa6rt52cm9r9zqt8r2t7mlcwspyetp5h2tztugp9lfyql"
)
COFFEE = (
    "lnbc2500u1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqq"
    "syqcyq5rqwzqfqypqdq5xysxxatsyp3k7enxv4jsxqzpu9qrsgquk0rl77nj30yxdy8j9vdx85fkpmdla2087ne0xh8nhedh8w27kyke0lp53"
    "ut353s06fv3qfegext0eh0ymjpf39tuven09sam30g4vgpfna3rh"
)
NONSENSE = (
    "lnbc2500u1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqq"
    "syqcyq5rqwzqfqypqdpquwpc4curk03c9wlrswe78q4eyqc7d8d0xqzpu9qrsgqhtjpauu9ur7fw2thcl4y9vfvh4m9wlfyz2gem29g5ghe2a"
    "ak2pm3ps8fdhtceqsaagty2vph7utlgj48u0ged6a337aewvraedendscp573dxr"
)
HASHED = (
    "lnbc20m1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsy"
    "qcyq5rqwzqfqypqhp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2ahrqs9qrsgq7ea976txfraylvgzuxs8kgcw23ezlrszf"
    "nh8r6qtfpr6cxga50aj6txm9rxrydzd06dfeawfk6swupvz4erwnyutnjq7x39ymw6j38gp7ynn44"
)


@pytest.mark.parametrize(("mnemonic", "secret", "nsec", "pubkey", "npub"), NIP06)
def test_nip06_vectors(mnemonic: str, secret: str, nsec: str, pubkey: str, npub: str) -> None:
    keys = Keys.from_mnemonic(mnemonic)
    assert keys.secret_hex() == secret
    assert keys.nsec() == nsec
    assert keys.public_key == pubkey
    assert keys.npub == npub
    assert Keys.parse(nsec).public_key == pubkey
    assert Keys.parse(secret).public_key == pubkey
    assert npub_to_hex(npub) == pubkey


def test_secret_never_in_repr_or_str() -> None:
    _, secret, nsec, _, npub = NIP06[0]
    keys = Keys.parse(nsec)
    for text in (repr(keys), str(keys), repr([keys]), str(keys.to_dict())):
        assert secret not in text and nsec not in text and "monkey" not in text
    assert npub in repr(keys)
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(keys)


def test_load_keys_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    mnemonic, _, _, pubkey, _ = NIP06[0]
    other = NIP06[1]
    assert load_keys().source == "ephemeral"
    key_file = tmp_path / "pylon.key"
    key_file.write_text(other[2] + "\n")
    monkeypatch.setenv("PYLON_KEY_FILE", str(key_file))
    assert load_keys().public_key == other[3]
    monkeypatch.setenv("PYLON_MNEMONIC", mnemonic)
    assert load_keys().public_key == pubkey and load_keys().source == "PYLON_MNEMONIC"
    monkeypatch.setenv("PYLON_NSEC", other[1])
    assert load_keys().public_key == other[3]
    monkeypatch.setenv("PYLON_KEY_FILE", str(tmp_path / "missing"))
    monkeypatch.delenv("PYLON_NSEC")
    monkeypatch.delenv("PYLON_MNEMONIC")
    with pytest.raises(InvalidKeyError) as info:
        load_keys()
    assert "missing" in str(info.value)


@pytest.mark.parametrize("bad", ["nsec1qqqq", "zz" * 32, "one two three", "npub1zutzeysacnf9rru6zqwmxd54mud0k44tst"])
def test_bad_keys_are_clear_errors_without_the_input(bad: str) -> None:
    with pytest.raises(InvalidKeyError) as info:
        Keys.parse(bad)
    assert bad not in str(info.value)


def test_bech32_rejects_bad_checksum_and_mixed_case() -> None:
    npub = NIP06[0][4]
    with pytest.raises(Bech32Error):
        bech32_decode(npub[:-1] + ("q" if npub[-1] != "q" else "p"))
    with pytest.raises(Bech32Error):
        bech32_decode(npub[:10] + npub[10:].upper())
    assert bech32_decode(npub.upper())[0] == "npub"


def test_event_sign_verify_and_tamper() -> None:
    keys = Keys.generate()
    event = sign_event(keys, 5050, [["i", 'quote " and \\ and \n', "text"]], "tab\there \u2028 ✓ \x01")
    assert verify_event(event)
    for field, value in (("content", "other"), ("kind", 5051), ("created_at", 1), ("tags", [])):
        assert not verify_event({**event, field: value})
    other = Keys.generate()
    assert not verify_event({**event, "pubkey": other.public_key})
    forged = sign_event(other, 5050, event["tags"], event["content"], created_at=event["created_at"])
    assert not verify_event({**event, "sig": forged["sig"]})
    assert not verify_event({**event, "sig": "zz"})
    assert not verify_event({"id": 1})


@pytest.mark.parametrize(
    ("invoice", "amount", "description"),
    [
        (DONATION, None, "Please consider supporting this project"),
        (COFFEE, 250_000_000, "1 cup coffee"),
        (NONSENSE, 250_000_000, "ナンセンス 1杯"),
        (HASHED, 2_000_000_000, None),
    ],
)
def test_bolt11_spec_examples(invoice: str, amount: int | None, description: str | None) -> None:
    decoded = bolt11.decode(invoice)
    assert decoded.amount_msats == amount
    assert decoded.payment_hash == HASH
    assert decoded.description == description
    assert decoded.payee == PAYEE
    assert decoded.timestamp == 1496314658
    assert bolt11.decode("lightning:" + invoice.upper()).amount_msats == amount


def test_bolt11_rejects_corruption() -> None:
    with pytest.raises(bolt11.Bolt11Error, match="checksum"):
        bolt11.decode(COFFEE[:-1] + ("q" if COFFEE[-1] != "q" else "p"))
    # Change the amount in the HRP and fix up the checksum: the signature must no longer verify.
    from dsrs_pylon.bech32 import bech32_encode

    hrp, data = bech32_decode(COFFEE)
    assert hrp == "lnbc2500u"
    # Without an `n` field the payee is recovered from the signature: a changed amount yields another payee.
    assert bolt11.decode(bech32_encode("lnbc2600u", data)).payee != PAYEE
    with pytest.raises(bolt11.Bolt11Error, match="end in 0"):
        bolt11.decode(bech32_encode("lnbc2501p", data))
    with pytest.raises(bolt11.Bolt11Error, match="prefix"):
        bolt11.decode(bech32_encode("lnxx2500u", data))


@pytest.mark.parametrize("msats", [1, 10, 21, 999, 1000, 100_000, 123_456_789, 250_000_000, 10**11])
def test_bolt11_encode_roundtrip(msats: int) -> None:
    node = secrets.token_bytes(32)
    preimage = os.urandom(32)
    invoice = bolt11.encode(
        amount_msats=msats,
        payment_hash=hashlib.sha256(preimage).digest(),
        node_secret=node,
        description="job",
        expiry=120,
        payment_secret=os.urandom(32),
    )
    decoded = bolt11.decode(invoice)
    assert decoded.amount_msats == msats
    assert decoded.payment_hash == hashlib.sha256(preimage).hexdigest()
    assert decoded.expiry == 120 and not decoded.is_expired()
    import coincurve

    assert decoded.payee == coincurve.PrivateKey(node).public_key.format().hex()


def test_nip04_roundtrip_and_interop_with_nostr_sdk() -> None:
    nostr_sdk = pytest.importorskip("nostr_sdk")
    alice, bob = Keys.generate(), Keys.generate()
    text = 'pay_invoice {"invoice": "lnbc..."} ✓'
    payload = nip04.encrypt(alice, bob.public_key, text)
    assert nip04.decrypt(bob, alice.public_key, payload) == text
    sdk_bob = nostr_sdk.SecretKey.parse(bob.secret_hex())
    sdk_alice_pub = nostr_sdk.PublicKey.parse(alice.public_key)
    assert nostr_sdk.nip04_decrypt(sdk_bob, sdk_alice_pub, payload) == text
    sdk_payload = nostr_sdk.nip04_encrypt(sdk_bob, sdk_alice_pub, "from rust")
    assert nip04.decrypt(alice, bob.public_key, sdk_payload) == "from rust"
    with pytest.raises(nip04.Nip04Error):
        nip04.decrypt(Keys.generate(), alice.public_key, payload)


def test_bip39_and_bip32_vectors() -> None:
    from dsrs_pylon.keys import derive_bip32, mnemonic_to_seed

    # BIP-39 vector 1 (passphrase "TREZOR") and BIP-32 test vector 1 (master key and m/0H).
    words = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
    assert mnemonic_to_seed(words, "TREZOR").hex() == (
        "c55257c360c07c72029aebc1b53c05ed0362ada38ead3e3e9efa3708e53495531f09a6987599d18264c1e1c92f2cf141630c7a3c4ab7c8"
        "1b2f001698e7463b04"
    )
    seed = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
    assert derive_bip32(seed, "m").hex() == "e8f32e723decf4051aefac8e2c93c9c5b214313817cdb01a1494b917c8436b35"
    assert derive_bip32(seed, "m/0'").hex() == "edb2e14f9ee77d26dd93b4ecede8d16ed408ce149b6cd80b0715a2d911a0afea"


async def test_events_with_tricky_text_are_accepted_by_a_real_relay(relay: LoopbackRelay) -> None:
    """The id preimage must match the relay's own serialisation (serde_json) byte for byte."""
    import json

    import websockets

    nostr_sdk = pytest.importorskip("nostr_sdk")
    keys = Keys.generate()
    texts = ['q"b\\s/n\n r\r t\t b\b f\f', "\x00\x01\x1f\x7f", "é ✓ 😀 \u2028\u2029", "</script>&<>"]
    async with websockets.connect(relay.url) as ws:
        for text in texts:
            event = sign_event(keys, 1, [["t", text]], text)
            assert nostr_sdk.Event.from_json(json.dumps(event)).verify()
            await ws.send(json.dumps(["EVENT", event]))
            ok = json.loads(await ws.recv())
            assert ok[:3] == ["OK", event["id"], True], ok
