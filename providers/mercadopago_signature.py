"""Mercado Pago's `x-signature` header: `ts=<ts>,v1=<hex>`, an HMAC-SHA256 of the manifest
`id:<data.id lowercased>;request-id:<x-request-id>;ts:<ts>;` keyed with the webhook secret.
A manifest part whose value is absent is left out."""

from __future__ import annotations

import hashlib
import hmac
import re

# MP documents `ts` in milliseconds, but its own example is in seconds. Any plausible time in
# seconds is below this (year 5138); any plausible time in milliseconds is above it.
_MILLISECONDS_ABOVE = 10**11
# `ts` is an integer: a float parse accepted `nan`, which is never outside any window.
_TS = re.compile(r"[0-9]{1,16}")
# The manifest joins its parts with `;` and names them with `:`: a value holding either could
# pass for another manifest (`data.id=1;request-id:x`), so ids keep to a safe charset.
_MANIFEST_VALUE = re.compile(r"[A-Za-z0-9_.&-]{1,100}")


class InvalidSignature(Exception):
    """The notification's signature is missing, malformed, wrong or stale; `reason` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def manifest(*, data_id: str | None, request_id: str | None, ts: str) -> str:
    parts = []
    if data_id:
        parts.append(f"id:{data_id.lower()};")
    if request_id:
        parts.append(f"request-id:{request_id};")
    parts.append(f"ts:{ts};")
    return "".join(parts)


def _digest(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def sign(secret: str, *, data_id: str | None, request_id: str | None, ts: str | int) -> str:
    """The `x-signature` header value MP would send for this notification."""
    ts = str(ts)
    return f"ts={ts},v1={_digest(secret, manifest(data_id=data_id, request_id=request_id, ts=ts))}"


def parse(x_signature: str) -> tuple[str, str]:
    """(ts, v1) from the header; split on `,`, then each part on its first `=`."""
    fields: dict[str, str] = {}
    for part in x_signature.split(","):
        key, sep, value = part.partition("=")
        if sep:
            fields[key.strip()] = value.strip()
    ts, v1 = fields.get("ts"), fields.get("v1")
    if not ts or not v1:
        raise InvalidSignature("x-signature lacks ts or v1")
    return ts, v1


def verify(
    secret: str,
    *,
    x_signature: str | None,
    x_request_id: str | None,
    data_id: str | None,
    now: float,
    tolerance_seconds: float,
) -> None:
    """Raise InvalidSignature unless the header is MP's signature of this notification, made
    within `tolerance_seconds` of `now` (seconds since the epoch)."""
    if not secret:
        raise InvalidSignature("no webhook secret is configured")
    if not x_signature:
        raise InvalidSignature("missing x-signature")
    ts, v1 = parse(x_signature)
    if not _TS.fullmatch(ts):
        raise InvalidSignature("ts is not an integer")
    stamp = int(ts)
    for name, value in (("data.id", data_id), ("x-request-id", x_request_id)):
        if value is not None and not _MANIFEST_VALUE.fullmatch(value):
            raise InvalidSignature(f"{name} has characters outside [A-Za-z0-9_.&-]")
    expected = _digest(secret, manifest(data_id=data_id, request_id=x_request_id, ts=ts))
    if not hmac.compare_digest(expected, v1.lower()):
        raise InvalidSignature("signature does not match")
    seconds = stamp / 1000 if stamp >= _MILLISECONDS_ABOVE else stamp
    if abs(now - seconds) > tolerance_seconds:
        raise InvalidSignature("ts is outside the tolerance window")
