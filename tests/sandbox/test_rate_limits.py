"""The sandbox's rate limits answer 429 with Retry-After beyond the rate, as Resend does at 2/s."""

from __future__ import annotations

import pytest

from providers.clients import ProviderClients
from providers.errors import RateLimitedError
from providers.resend import EmailMessage
from sandbox.rate_limits import RateLimits, RateLimitSpec
from tests.support import SandboxHandle

pytestmark = pytest.mark.sandbox


def _message(n: int) -> EmailMessage:
    return EmailMessage(
        from_="Entrega <a@entrega.app>", to=f"c{n}@example.com", subject="s", html="h", text="t"
    )


async def test_beyond_the_rate_answers_429_until_cleared(
    clients: ProviderClients, sandbox: SandboxHandle
) -> None:
    """At 2/s the third send within a second gets 429 with Retry-After; DELETE lifts the limit."""
    response = await sandbox.http.post(
        "/_sandbox/rate-limits",
        json={"service": "resend", "operation": "send_email", "per_second": 2},
    )
    assert response.status_code == 201
    await clients.resend.send_email(_message(1), idempotency_key="k1")
    await clients.resend.send_email(_message(2), idempotency_key="k2")
    with pytest.raises(RateLimitedError) as raised:
        await clients.resend.send_email(_message(3), idempotency_key="k3")
    assert raised.value.retry_after and raised.value.retry_after >= 1
    assert (await sandbox.http.get("/_sandbox/rate-limits")).json()[0]["refused"] == 1
    assert (await sandbox.http.delete("/_sandbox/rate-limits")).status_code == 204
    await clients.resend.send_email(_message(3), idempotency_key="k3")
    assert len((await sandbox.state())["emails"]) == 3


async def test_unknown_operation_is_refused(sandbox: SandboxHandle) -> None:
    """A limit on an operation the service does not have is a 422 naming the operations."""
    response = await sandbox.http.post(
        "/_sandbox/rate-limits", json={"service": "resend", "operation": "nope", "per_second": 1}
    )
    assert response.status_code == 422


def test_window_slides_with_the_clock() -> None:
    """Two calls per second pass, the third waits for the oldest to leave the window."""
    now = [100.0]
    limits = RateLimits(clock=lambda: now[0])
    limits.add(RateLimitSpec(service="resend", per_second=2))
    assert limits.check("resend", "send_email") is None
    now[0] += 0.4
    assert limits.check("resend", "send_email") is None
    assert limits.check("resend", "send_email") == 1
    now[0] += 0.61
    assert limits.check("resend", "send_email") is None
    assert limits.check("lovable", "create_user") is None
