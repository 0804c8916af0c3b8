"""Every client sorts failures the same way: permanent errors stop, transient ones get retried."""

from __future__ import annotations

import pickle

import httpx
import pytest

from providers.errors import (
    ConflictError,
    NotFoundError,
    PermanentError,
    ProviderError,
    RateLimitedError,
    TransientError,
)
from tests.providers.calls import CALLS, SECRET
from tests.providers.conftest import Script

SERVICES = sorted(CALLS)


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, PermanentError),
        (401, PermanentError),
        (403, PermanentError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, PermanentError),
        (500, TransientError),
        (502, TransientError),
        (503, TransientError),
    ],
)
async def test_status_maps_to_its_error_class(
    script: Script, service: str, status: int, expected: type[ProviderError]
) -> None:
    """An HTTP error status becomes the matching error class, carrying service and status."""
    script.answer(status, json={})
    async with script.client() as http:
        with pytest.raises(ProviderError) as raised:
            await CALLS[service](http)
    assert type(raised.value) is expected
    assert (raised.value.service, raised.value.status) == (service, status)


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("header", ["Retry-After", "RateLimit-Reset"])
async def test_429_is_rate_limited_with_its_wait(script: Script, service: str, header: str) -> None:
    """A 429 is a RateLimitedError whose retry_after comes from Retry-After or RateLimit-Reset."""
    script.answer(429, json={}, headers={header: "7"})
    async with script.client() as http:
        with pytest.raises(RateLimitedError) as raised:
            await CALLS[service](http)
    assert raised.value.retry_after == 7.0


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (httpx.ReadTimeout("read timed out"), "timeout"),
        (httpx.ConnectTimeout("connect timed out"), "timeout"),
        (httpx.ConnectError("connection refused"), "connection_error"),
        (httpx.RemoteProtocolError("peer closed"), "connection_error"),
    ],
)
async def test_network_failures_are_transient(
    script: Script, service: str, failure: Exception, code: str
) -> None:
    """Timeouts and connection failures are TransientErrors, so Temporal retries them."""
    script.fail(failure)
    async with script.client() as http:
        with pytest.raises(TransientError) as raised:
            await CALLS[service](http)
    assert raised.value.code == code
    assert not isinstance(raised.value, RateLimitedError)


@pytest.mark.parametrize("service", SERVICES)
async def test_non_json_answer_is_transient(script: Script, service: str) -> None:
    """A 200 that is not JSON (a proxy's page) is transient: the next try may reach the provider."""
    script.answer(200, content=b"<html>gateway</html>")
    async with script.client() as http:
        with pytest.raises(TransientError) as raised:
            await CALLS[service](http)
    assert raised.value.code == "invalid_response"


@pytest.mark.parametrize("service", SERVICES)
async def test_secret_never_appears_in_errors(script: Script, service: str) -> None:
    """Even a provider echoing our key back leaves no trace of it in the error."""
    echo = f"bad key {SECRET}"
    body = {"message": echo, "msg": echo, "errors": [{"code": "invalid", "description": echo}]}
    script.answer(401, json=body)
    async with script.client() as http:
        with pytest.raises(ProviderError) as raised:
            await CALLS[service](http)
    assert "bad key ***" in raised.value.message
    assert SECRET not in str(raised.value) + repr(raised.value)


def test_errors_survive_pickling() -> None:
    """Errors keep every field across pickling (as when sent between processes)."""
    error = RateLimitedError("resend", "slow down", status=429, code="rate_limit", retry_after=2.5)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is RateLimitedError
    assert (copy.service, copy.status, copy.code, copy.retry_after) == (
        "resend",
        429,
        "rate_limit",
        2.5,
    )
    assert str(copy) == str(error)
