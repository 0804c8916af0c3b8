"""The payload codec: every payload Entrega hands Temporal is encrypted with AES-256-GCM.

Not workflow code: clients and workers run it on payloads on their way to and from the server,
so Temporal's history (and whoever reads it) sees only ciphertext and a key id. Payloads written
before the codec existed carry no `binary/encrypted` encoding and pass through unchanged, so
committed and running histories still replay.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
_NONCE_BYTES = 12
_KEY_BYTES = 32


class PayloadKeyError(ValueError):
    """TEMPORAL_PAYLOAD_KEYS is malformed, or a payload names a key we do not hold."""


@dataclass(frozen=True)
class PayloadKey:
    """One AES-256 key and the id written next to what it encrypts."""

    key_id: str
    key: bytes

    def __repr__(self) -> str:
        return f"PayloadKey(key_id={self.key_id!r}, key=<hidden>)"


def parse_payload_keys(text: str) -> list[PayloadKey]:
    """Parse `id:base64-key[,id:base64-key...]`: the first encrypts, all decrypt.

    Messages name the key id, never the key."""
    keys: list[PayloadKey] = []
    for position, entry in enumerate(part.strip() for part in text.split(",")):
        if not entry:
            continue
        key_id, sep, encoded = entry.partition(":")
        key_id = key_id.strip()
        if not sep or not key_id:
            raise PayloadKeyError(f"entry {position + 1} is not `key-id:base64-key`")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise PayloadKeyError(f"key {key_id!r} is not valid base64") from None
        if len(key) != _KEY_BYTES:
            raise PayloadKeyError(
                f"key {key_id!r} has {len(key)} bytes; AES-256 needs {_KEY_BYTES}"
            )
        if any(k.key_id == key_id for k in keys):
            raise PayloadKeyError(f"key id {key_id!r} appears twice")
        keys.append(PayloadKey(key_id, key))
    if not keys:
        raise PayloadKeyError("no key given")
    return keys


def new_payload_key(key_id: str) -> str:
    """A fresh `key-id:base64-key` entry (for operators rotating keys, and for tests)."""
    return f"{key_id}:{base64.b64encode(os.urandom(_KEY_BYTES)).decode()}"


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM with a random nonce per payload; the key id is metadata and associated data."""

    def __init__(self, keys: Sequence[PayloadKey]) -> None:
        if not keys:
            raise PayloadKeyError("no key given")
        self._current = keys[0]
        self._ciphers = {k.key_id: AESGCM(k.key) for k in keys}

    @property
    def current_key_id(self) -> str:
        return self._current.key_id

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self._current.key_id
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(nonce, payload.SerializeToString(), key_id.encode())
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id.encode()},
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # written before the codec: pass through unchanged
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode()
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PayloadKeyError(
                f"payload encrypted with key {key_id!r}, which TEMPORAL_PAYLOAD_KEYS lacks"
            )
        nonce, sealed = payload.data[:_NONCE_BYTES], payload.data[_NONCE_BYTES:]
        return Payload.FromString(cipher.decrypt(nonce, sealed, key_id.encode()))
