"""Mercado Pago's x-signature: produced and verified exactly by the manifest rule."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from providers.mercadopago_signature import InvalidSignature, parse, sign, verify

SECRET = "test-mp-webhook-secret"
REQUEST_ID = "bb56a2f1-6aae-46ac-982e-9dcd3581d08e"
TS = 1704908010  # seconds, as in MP's own example
# HMAC-SHA256(SECRET, "id:9f3a1b2c;request-id:bb56a2f1-...;ts:1704908010;"), computed once by hand.
KNOWN_V1 = "ae6228713a2590049d0382ab65261419d51a9305cfe3f2a45b6d4f7e057629c4"


def check(
    x_signature: str | None,
    *,
    data_id: str | None = "9F3A1B2C",
    now: float = TS,
    request_id: str | None = REQUEST_ID,
    tolerance: float = 300,
) -> None:
    verify(
        SECRET,
        x_signature=x_signature,
        x_request_id=request_id,
        data_id=data_id,
        now=now,
        tolerance_seconds=tolerance,
    )


def test_signature_matches_a_vector_computed_from_the_manifest_rule() -> None:
    """sign() equals HMAC-SHA256 over `id:<lowercased id>;request-id:<id>;ts:<ts>;`, hex."""
    manifest = f"id:9f3a1b2c;request-id:{REQUEST_ID};ts:{TS};"
    by_hand = hmac.new(SECRET.encode(), manifest.encode(), hashlib.sha256).hexdigest()
    assert by_hand == KNOWN_V1
    assert (
        sign(SECRET, data_id="9f3a1b2c", request_id=REQUEST_ID, ts=TS) == f"ts={TS},v1={KNOWN_V1}"
    )
    check(f"ts={TS},v1={KNOWN_V1}")


def test_uppercase_id_in_the_query_is_lowercased_into_the_manifest() -> None:
    """An upper-case data.id signs and verifies as its lower-case form."""
    assert sign(SECRET, data_id="9F3A1B2C", request_id=REQUEST_ID, ts=TS).endswith(KNOWN_V1)
    check(f"ts={TS},v1={KNOWN_V1}", data_id="9F3A1B2C")


def test_missing_request_id_drops_its_part_of_the_manifest() -> None:
    """Without x-request-id the manifest omits `request-id:` and still verifies."""
    manifest = f"id:9f3a1b2c;ts:{TS};"
    v1 = hmac.new(SECRET.encode(), manifest.encode(), hashlib.sha256).hexdigest()
    assert sign(SECRET, data_id="9f3a1b2c", request_id=None, ts=TS) == f"ts={TS},v1={v1}"
    check(f"ts={TS},v1={v1}", request_id=None)
    with pytest.raises(InvalidSignature, match="does not match"):
        check(f"ts={TS},v1={KNOWN_V1}", request_id=None)  # signed with the id, sent without it


def test_stale_ts_is_rejected_in_seconds_and_in_milliseconds() -> None:
    """A correct signature older than the tolerance is refused, whichever unit ts uses."""
    with pytest.raises(InvalidSignature, match="tolerance"):
        check(f"ts={TS},v1={KNOWN_V1}", now=TS + 301)
    ts_ms = TS * 1000
    header = sign(SECRET, data_id="9f3a1b2c", request_id=REQUEST_ID, ts=ts_ms)
    check(header, now=TS + 299)
    with pytest.raises(InvalidSignature, match="tolerance"):
        check(header, now=TS + 301)


def test_tampered_id_or_digest_is_rejected() -> None:
    """Changing the notified id, or any hex digit of v1, breaks the signature."""
    with pytest.raises(InvalidSignature, match="does not match"):
        check(f"ts={TS},v1={KNOWN_V1}", data_id="9f3a1b2d")
    tampered = KNOWN_V1[:-1] + ("0" if KNOWN_V1[-1] != "0" else "1")
    with pytest.raises(InvalidSignature, match="does not match"):
        check(f"ts={TS},v1={tampered}")
    with pytest.raises(InvalidSignature, match="does not match"):
        check(f"ts={TS + 1},v1={KNOWN_V1}", now=TS + 1)  # ts is inside the manifest too


@pytest.mark.parametrize(
    "header", [None, "", "v1=abc", f"ts={TS}", "garbage", f"ts=abc,v1={KNOWN_V1}"]
)
def test_malformed_or_missing_header_is_rejected(header: str | None) -> None:
    """A missing header, a missing part or a non-numeric ts never verifies."""
    with pytest.raises(InvalidSignature):
        check(header)


def test_header_parts_are_split_on_comma_then_first_equals() -> None:
    """Spaces around parts are tolerated and part order does not matter."""
    assert parse(f" v1={KNOWN_V1} , ts={TS}") == (str(TS), KNOWN_V1)
    check(f"v1={KNOWN_V1}, ts={TS}")


def test_empty_secret_never_verifies() -> None:
    """With no secret configured, even a signature made with an empty key is refused."""
    header = sign("", data_id="9f3a1b2c", request_id=REQUEST_ID, ts=TS)
    with pytest.raises(InvalidSignature, match="secret"):
        verify(
            "",
            x_signature=header,
            x_request_id=REQUEST_ID,
            data_id="9f3a1b2c",
            now=TS,
            tolerance_seconds=300,
        )


@pytest.mark.parametrize("ts", ["nan", "NaN", "inf", "-inf", "1704908010.0", "1e9"])
def test_non_integer_ts_is_refused_even_when_signed(ts: str) -> None:
    """A `ts` that is not an integer is refused, however it is signed: `nan` was never stale."""
    header = sign(SECRET, data_id="9f3a1b2c", request_id=REQUEST_ID, ts=ts)
    with pytest.raises(InvalidSignature, match="integer"):
        check(header, now=TS + 10**9)


@pytest.mark.parametrize(
    ("data_id", "request_id"),
    [
        ("1;request-id:forged", "x"),
        ("1", "x;ts:1"),
        ("1:2", REQUEST_ID),
        ("1\x00", REQUEST_ID),
        ("1 2", REQUEST_ID),
    ],
)
def test_ids_that_could_rewrite_the_manifest_are_refused(data_id: str, request_id: str) -> None:
    """A data.id or x-request-id holding `;`, `:` or anything outside the safe charset is refused
    even when correctly signed: the manifest would be ambiguous."""
    header = sign(SECRET, data_id=data_id, request_id=request_id, ts=TS)
    with pytest.raises(InvalidSignature, match="outside"):
        check(header, data_id=data_id, request_id=request_id)
