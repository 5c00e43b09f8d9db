"""Secrets at rest: AES-256-GCM with key ids, so keys rotate without re-encrypting everything.

Keys come from ``KAIXU_ENCRYPTION_KEYS``: comma-separated ``kid:base64-of-32-bytes``
entries. The LAST entry is the current key and encrypts every new secret; earlier entries
only decrypt what they wrote. To rotate, append a new entry, and drop an old one only once
no stored secret uses its key id any more.

A sealed secret is ``v1.<kid>.<nonce>.<ciphertext+tag>`` (base64url, no padding) with a fresh
96-bit random nonce each time. The caller passes associated data that binds the secret to
its owner (e.g. the customer id), so a ciphertext copied onto another row fails to open.
Every failure to open (unknown key id, tampering, wrong owner, malformed text) raises
:class:`DecryptionError`: never a silent ``None``.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared import config

VERSION = "v1"
_KID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_NONCE_BYTES = 12


class EncryptionNotConfigured(Exception):
    """KAIXU_ENCRYPTION_KEYS is unset or malformed (the message never contains key material)."""


class DecryptionError(Exception):
    """A sealed secret could not be opened."""


class Keyring(NamedTuple):
    keys: dict[str, bytes]
    current: str  # the key id new secrets are sealed with


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key_bytes(position: int, encoded: str) -> bytes:
    try:
        key = base64.b64decode(
            encoded.replace("-", "+").replace("_", "/") + "=" * (-len(encoded) % 4), validate=True
        )
    except (binascii.Error, ValueError):
        raise EncryptionNotConfigured(
            f"KAIXU_ENCRYPTION_KEYS entry {position}: the key is not base64."
        ) from None
    if len(key) != 32:
        raise EncryptionNotConfigured(f"KAIXU_ENCRYPTION_KEYS entry {position}: the key must be 32 bytes.")
    return key


@lru_cache(maxsize=8)
def parse_keyring(entries: Sequence[str]) -> Keyring:
    """Keys from ``kid:base64`` entries; the last one is current."""
    if not entries:
        raise EncryptionNotConfigured("Secrets cannot be stored: KAIXU_ENCRYPTION_KEYS is not set.")
    keys: dict[str, bytes] = {}
    for position, entry in enumerate(entries, start=1):
        kid, _, encoded = entry.partition(":")
        kid = kid.strip()
        if not _KID.match(kid) or kid in keys:
            raise EncryptionNotConfigured(
                f"KAIXU_ENCRYPTION_KEYS entry {position}: the key id must be unique, 1-32 of A-Z a-z 0-9 _ -."
            )
        keys[kid] = _key_bytes(position, encoded.strip())
    return Keyring(keys, current=kid)


def keyring() -> Keyring:
    return parse_keyring(tuple(config.settings().encryption_keys))


def seal(plaintext: str, associated_data: bytes, ring: Keyring | None = None) -> str:
    """Encrypt with the current key: ``v1.<kid>.<nonce>.<ciphertext>``."""
    ring = ring or keyring()
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(ring.keys[ring.current]).encrypt(nonce, plaintext.encode(), associated_data)
    return f"{VERSION}.{ring.current}.{_b64(nonce)}.{_b64(sealed)}"


def key_id(sealed: str) -> str:
    """The key id a sealed secret was written with."""
    parts = sealed.split(".")
    if len(parts) != 4 or parts[0] != VERSION:
        raise DecryptionError("The stored secret is not in a format this server knows.")
    return parts[1]


def open_sealed(sealed: str, associated_data: bytes, ring: Keyring | None = None) -> str:
    """Decrypt, or raise :class:`DecryptionError` saying why (without any secret in it)."""
    ring = ring or keyring()
    kid = key_id(sealed)
    key = ring.keys.get(kid)
    if key is None:
        raise DecryptionError(f"The stored secret uses key id {kid!r}, which KAIXU_ENCRYPTION_KEYS lacks.")
    _, _, nonce, body = sealed.split(".")
    try:
        return AESGCM(key).decrypt(_unb64(nonce), _unb64(body), associated_data).decode()
    except (InvalidTag, binascii.Error, ValueError):
        raise DecryptionError(
            "The stored secret failed authentication (tampered, or not this owner's)."
        ) from None
