"""shared.crypto: AES-256-GCM with key ids, rotation, and loud failures."""

from __future__ import annotations

import base64
import os

import pytest

from shared import crypto

AD = b"kaixu:netlify-token:customer:7"


def entry(kid: str, key: bytes | None = None) -> str:
    return f"{kid}:{base64.b64encode(key or os.urandom(32)).decode()}"


def ring(*entries: str) -> crypto.Keyring:
    return crypto.parse_keyring(tuple(entries))


def test_round_trip_uses_fresh_nonces():
    keys = ring(entry("k1"))
    first, second = crypto.seal("nfp_secret", AD, keys), crypto.seal("nfp_secret", AD, keys)
    assert first != second and "nfp_secret" not in first
    assert first.split(".")[:2] == ["v1", "k1"]
    assert crypto.open_sealed(first, AD, keys) == crypto.open_sealed(second, AD, keys) == "nfp_secret"
    assert crypto.open_sealed(crypto.seal("Grüße 🚀", AD, keys), AD, keys) == "Grüße 🚀"


def test_rotation_old_secrets_still_open_and_new_ones_use_the_newest_key():
    old = entry("2025a")
    sealed_old = crypto.seal("old-token", AD, ring(old))
    rotated = ring(old, entry("2026a"))  # the newest key is appended last
    assert rotated.current == "2026a"
    assert crypto.open_sealed(sealed_old, AD, rotated) == "old-token"
    sealed_new = crypto.seal("new-token", AD, rotated)
    assert crypto.key_id(sealed_new) == "2026a"
    assert crypto.open_sealed(sealed_new, AD, rotated) == "new-token"
    with pytest.raises(crypto.DecryptionError, match="2026a"):
        crypto.open_sealed(sealed_new, AD, ring(old))  # a server without the new key


def test_tampering_is_an_error():
    keys = ring(entry("k1"))
    sealed = crypto.seal("token", AD, keys)
    version, kid, nonce, body = sealed.split(".")
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    for bad in (
        f"{version}.{kid}.{nonce}.{flipped}",
        f"{version}.{kid}.{nonce[::-1]}.{body}",
        f"{version}.{kid}.{nonce}.",
        f"{version}.{kid}.{nonce}.!!!",
    ):
        with pytest.raises(crypto.DecryptionError):
            crypto.open_sealed(bad, AD, keys)


def test_wrong_owner_unknown_key_and_bad_format_are_errors():
    keys = ring(entry("k1"))
    sealed = crypto.seal("token", AD, keys)
    with pytest.raises(crypto.DecryptionError, match="authentication"):
        crypto.open_sealed(sealed, b"kaixu:netlify-token:customer:8", keys)
    with pytest.raises(crypto.DecryptionError, match="k1"):
        crypto.open_sealed(sealed, AD, ring(entry("other")))
    with pytest.raises(crypto.DecryptionError, match="format"):
        crypto.open_sealed("v1:abc:def", AD, keys)  # the original system's format
    with pytest.raises(crypto.DecryptionError):
        crypto.open_sealed(sealed, AD, ring(entry("k1")))  # same id, different key


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ((), "not set"),
        (("k1",), "32 bytes"),
        (("k1:not base64!",), "base64"),
        ((entry("k1", os.urandom(16)),), "32 bytes"),
        ((entry("k.1"),), "key id"),
        ((entry("k1"), entry("k1")), "key id"),
    ],
)
def test_malformed_keys_are_refused_without_echoing_them(entries, message):
    with pytest.raises(crypto.EncryptionNotConfigured, match=message) as caught:
        crypto.parse_keyring(tuple(entries))
    for item in entries:
        assert item.partition(":")[2] not in str(caught.value) or not item.partition(":")[2]


def test_keys_accept_urlsafe_base64_and_come_from_the_environment(configure):
    key = os.urandom(32)
    urlsafe = base64.urlsafe_b64encode(key).rstrip(b"=").decode()
    configure(KAIXU_ENCRYPTION_KEYS=f"a:{base64.b64encode(os.urandom(32)).decode()}, b:{urlsafe}")
    assert crypto.keyring().current == "b" and crypto.keyring().keys["b"] == key
