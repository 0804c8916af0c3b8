"""ResendClient: Resend's body shape, its Idempotency-Key, and its special error codes."""

from __future__ import annotations

import json

import pytest

from providers.errors import ConflictError, PermanentError, RateLimitedError, TransientError
from providers.resend import ResendClient
from tests.providers.calls import MESSAGE, SECRET
from tests.providers.conftest import Script


def resend_error(status: int, name: str) -> dict[str, object]:
    return {"statusCode": status, "name": name, "message": f"{name} happened"}


async def test_send_posts_resends_shape_with_the_key(script: Script) -> None:
    """from/to/tags are sent as Resend expects, with the Idempotency-Key header."""
    script.answer(200, json={"id": "em_1"})
    async with script.client() as http:
        email_id = await ResendClient(http, SECRET).send_email(MESSAGE, "purchase:mp:1:credentials")
    assert email_id == "em_1"
    request = script.requests[0]
    assert request.headers["idempotency-key"] == "purchase:mp:1:credentials"
    body = json.loads(request.content)
    assert body["from"] == MESSAGE.from_ and body["to"] == ["ana@example.com"]
    assert body["tags"] == [{"name": "kind", "value": "credentials"}]


async def test_replay_answers_the_first_id(script: Script) -> None:
    """A replayed key gets the first e-mail's id back, which the client returns as usual."""
    script.answer(200, json={"id": "em_1"}).answer(200, json={"id": "em_1"})
    async with script.client() as http:
        resend = ResendClient(http, SECRET)
        assert await resend.send_email(MESSAGE, "k") == await resend.send_email(MESSAGE, "k")


@pytest.mark.parametrize(
    ("status", "name", "expected"),
    [
        (409, "invalid_idempotent_request", ConflictError),
        (409, "concurrent_idempotent_requests", TransientError),
        (429, "rate_limit_exceeded", RateLimitedError),
        (429, "daily_quota_exceeded", PermanentError),
        (429, "monthly_quota_exceeded", PermanentError),
        (422, "validation_error", PermanentError),
        (403, "invalid_api_key", PermanentError),
    ],
)
async def test_resend_codes_map_to_the_right_class(
    script: Script, status: int, name: str, expected: type[Exception]
) -> None:
    """Same-key-other-body is a conflict, an in-flight twin is transient, quotas are final."""
    script.answer(status, json=resend_error(status, name), headers={"retry-after": "1"})
    async with script.client() as http:
        with pytest.raises(expected) as raised:
            await ResendClient(http, SECRET).send_email(MESSAGE, "k")
    assert type(raised.value) is expected
    assert raised.value.code == name  # type: ignore[attr-defined]


async def test_overlong_key_is_refused_before_sending(script: Script) -> None:
    """Keys longer than Resend's 256 characters are a programming error, caught locally."""
    async with script.client() as http:
        with pytest.raises(ValueError, match="256"):
            await ResendClient(http, SECRET).send_email(MESSAGE, "k" * 257)
    assert script.requests == []
