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


async def test_batch_posts_the_bodies_with_its_key_in_permissive_mode(script: Script) -> None:
    """One request for the whole batch: the key and `x-batch-validation: permissive` headers,
    the bodies as a list, and one id per e-mail back in request order."""
    script.answer(200, json={"data": [{"id": "em_1"}, {"id": "em_2"}], "errors": []})
    async with script.client() as http:
        answer = await ResendClient(http, SECRET).send_batch(
            [MESSAGE.payload(), MESSAGE.payload()], "batch:1"
        )
    assert answer.ids == ["em_1", "em_2"] and answer.errors == {}
    request = script.requests[0]
    assert request.url.path.endswith("/emails/batch")
    assert request.headers["idempotency-key"] == "batch:1"
    assert request.headers["x-batch-validation"] == "permissive"
    assert json.loads(request.content) == [MESSAGE.payload(), MESSAGE.payload()]


async def test_batch_maps_a_refused_e_mail_to_its_position(script: Script) -> None:
    """`data` lists only the accepted e-mails: the refused one's index gets None and its
    message, the others keep their own ids."""
    script.answer(
        200,
        json={
            "data": [{"id": "em_1"}, {"id": "em_3"}],
            "errors": [{"index": 1, "message": "Invalid `to` field"}],
        },
    )
    async with script.client() as http:
        answer = await ResendClient(http, SECRET).send_batch([MESSAGE.payload()] * 3, "b")
    assert answer.ids == ["em_1", None, "em_3"]
    assert answer.errors == {1: "Invalid `to` field"}


@pytest.mark.parametrize(
    "body",
    [
        {"data": [{"id": "em_1"}]},
        {"data": [{"id": "em_1"}, {"id": "em_2"}], "errors": [{"index": 1, "message": "x"}]},
        {"data": [{"id": "em_1"}], "errors": [{"index": 7, "message": "x"}]},
        {"nope": True},
    ],
)
async def test_batch_answer_that_does_not_add_up_is_unexpected(
    script: Script, body: dict[str, object]
) -> None:
    """Ids that cannot be matched to the e-mails one for one are never guessed."""
    script.answer(200, json=body)
    async with script.client() as http:
        with pytest.raises(PermanentError) as raised:
            await ResendClient(http, SECRET).send_batch([MESSAGE.payload()] * 2, "b")
    assert raised.value.code == "unexpected_response"


async def test_batch_429_carries_retry_after(script: Script) -> None:
    """The batch endpoint's 429 is the same RateLimitedError, with the provider's wait."""
    script.answer(429, json=resend_error(429, "rate_limit_exceeded"), headers={"retry-after": "2"})
    async with script.client() as http:
        with pytest.raises(RateLimitedError) as raised:
            await ResendClient(http, SECRET).send_batch([MESSAGE.payload()], "b")
    assert raised.value.retry_after == 2


async def test_batch_size_is_checked_before_sending(script: Script) -> None:
    """0 or more than 100 e-mails never reach Resend."""
    async with script.client() as http:
        resend = ResendClient(http, SECRET)
        for payloads in ([], [MESSAGE.payload()] * 101):
            with pytest.raises(ValueError, match="1 to 100"):
                await resend.send_batch(payloads, "b")
    assert script.requests == []
