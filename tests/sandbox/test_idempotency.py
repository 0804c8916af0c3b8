"""Idempotency holds under concurrency: Resend's in-flight key, Lovable's e-mail and key."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from providers.clients import ProviderClients
from providers.errors import TransientError
from tests.conftest import TEST_SECRETS
from tests.providers.calls import MESSAGE
from tests.support import SandboxHandle

pytestmark = pytest.mark.sandbox

RESEND = {"Authorization": f"Bearer {TEST_SECRETS['resend_api_key']}"}


async def test_resend_twin_in_flight_is_told_to_retry_later(
    clients: ProviderClients, sandbox: SandboxHandle
) -> None:
    """While the first request with a key runs, its twin gets concurrent_idempotent_requests."""
    await sandbox.fault("resend", "send_email", latency_ms=400, times=1)
    first = asyncio.create_task(clients.resend.send_email(MESSAGE, "k-1"))
    await asyncio.sleep(0.1)
    with pytest.raises(TransientError) as raised:
        await clients.resend.send_email(MESSAGE, "k-1")
    assert raised.value.code == "concurrent_idempotent_requests"
    email_id = await first
    assert await clients.resend.send_email(MESSAGE, "k-1") == email_id
    assert len((await sandbox.state())["emails"]) == 1


async def test_resend_failed_request_does_not_hold_its_key(
    clients: ProviderClients, sandbox: SandboxHandle
) -> None:
    """A request that failed (here a 500) leaves the key free for the retry that follows."""
    await sandbox.fault("resend", "send_email", status=500, times=1)
    with pytest.raises(TransientError):
        await clients.resend.send_email(MESSAGE, "k-2")
    assert await clients.resend.send_email(MESSAGE, "k-2")
    assert len((await sandbox.state())["emails"]) == 1


@pytest.mark.parametrize(
    ("body", "status", "name"),
    [
        ({"from": "x", "to": "a@x.com", "subject": "s", "text": "t"}, 422, "validation_error"),
        ({"from": "a@x.com", "to": [], "subject": "s", "text": "t"}, 422, "validation_error"),
        ({"from": "a@x.com", "to": "a@x.com", "subject": "s"}, 422, "validation_error"),
        (
            {
                "from": "a@x.com",
                "to": "a@x.com",
                "subject": "s",
                "text": "t",
                "tags": [{"name": "a b", "value": "c"}],
            },
            422,
            "validation_error",
        ),
    ],
)
async def test_resend_validates_like_resend(
    sandbox: SandboxHandle, body: dict[str, object], status: int, name: str
) -> None:
    """Bad sender, no recipients, no content or a bad tag answer 422 validation_error."""
    response = await sandbox.http.post("/resend/emails", json=body, headers=RESEND)
    assert (response.status_code, response.json()["name"]) == (status, name)


async def test_resend_refuses_an_overlong_key(sandbox: SandboxHandle) -> None:
    """Keys over 256 characters answer 400 invalid_idempotency_key."""
    body = {"from": "a@x.com", "to": "a@x.com", "subject": "s", "text": "t"}
    response = await sandbox.http.post(
        "/resend/emails", json=body, headers={**RESEND, "Idempotency-Key": "k" * 257}
    )
    assert (response.status_code, response.json()["name"]) == (400, "invalid_idempotency_key")


async def test_concurrent_identical_sends_make_one_email(sandbox: SandboxHandle) -> None:
    """Fifty simultaneous sends with one key produce one e-mail; the rest replay or are told to
    wait, never send again."""
    body = {"from": "a@x.com", "to": "b@x.com", "subject": "s", "text": "t"}
    headers = {**RESEND, "Idempotency-Key": "same"}
    answers = await asyncio.gather(
        *(sandbox.http.post("/resend/emails", json=body, headers=headers) for _ in range(50))
    )
    assert {a.status_code for a in answers} <= {200, 409}
    assert len({a.json()["id"] for a in answers if a.status_code == 200}) == 1
    assert len((await sandbox.state())["emails"]) == 1


async def test_concurrent_lovable_creates_make_one_user(
    clients: ProviderClients, sandbox: SandboxHandle
) -> None:
    """Thirty simultaneous creates for one e-mail (different keys) leave exactly one user."""
    results = await asyncio.gather(
        *(
            clients.lovable.create_user("a@x.com", "pw-123456", "Ana", f"o{n}", f"key-{n}")
            for n in range(30)
        )
    )
    assert sum(r.created for r in results) == 1
    assert len({r.user_id for r in results}) == 1
    assert len((await sandbox.state())["lovable_users"]) == 1


async def test_concurrent_supabase_creates_make_one_user(sandbox: SandboxHandle) -> None:
    """Of thirty simultaneous creates for one e-mail, one succeeds and the rest see email_exists."""
    key = TEST_SECRETS["supabase_service_key"]
    headers = {"apikey": key, "Authorization": f"Bearer {key}"}
    body = {"email": "a@x.com", "password": "s3cret-pass"}
    answers: list[httpx.Response] = await asyncio.gather(
        *(
            sandbox.http.post("/supabase/auth/v1/admin/users", json=body, headers=headers)
            for _ in range(30)
        )
    )
    assert sorted(a.status_code for a in answers) == [200] + [422] * 29
    assert len((await sandbox.state())["auth_users"]) == 1
