"""The sandbox's `POST /resend/emails/batch`: up to 100 e-mails as one request of the rate limit,
strict or permissive validation, one Idempotency-Key for the batch, and faults."""

from __future__ import annotations

from typing import Any

import pytest

from providers.clients import ProviderClients
from providers.errors import PermanentError, RateLimitedError, TransientError
from tests.conftest import TEST_SECRETS
from tests.support import SandboxHandle

pytestmark = pytest.mark.sandbox

RESEND = {"Authorization": f"Bearer {TEST_SECRETS['resend_api_key']}"}


def email(n: int, to: str | None = None) -> dict[str, Any]:
    return {
        "from": "Entrega <a@entrega.app>",
        "to": [to or f"c{n}@example.com"],
        "subject": f"s{n}",
        "html": "<p>h</p>",
        "text": "t",
        "tags": [{"name": "n", "value": str(n)}],
    }


async def post(sandbox: SandboxHandle, body: Any, **headers: str) -> Any:
    return await sandbox.http.post("/resend/emails/batch", json=body, headers={**RESEND, **headers})


async def test_a_hundred_e_mails_are_one_request_of_the_limit(
    clients: ProviderClients, sandbox: SandboxHandle
) -> None:
    """At 2 requests/s, two batches of 100 go through and the third request is a 429: the
    limit counts requests, not e-mails."""
    await sandbox.http.post("/_sandbox/rate-limits", json={"service": "resend", "per_second": 2})
    for round_ in range(2):
        answer = await clients.resend.send_batch(
            [email(100 * round_ + n) for n in range(100)], f"b{round_}"
        )
        assert len(answer.ids) == 100 and all(answer.ids) and not answer.errors
    with pytest.raises(RateLimitedError) as raised:
        await clients.resend.send_batch([email(999)], "b2")
    assert raised.value.retry_after and raised.value.retry_after >= 1
    emails = (await sandbox.state())["emails"]
    assert len(emails) == 200 and {e["batch_idempotency_key"] for e in emails} == {"b0", "b1"}


async def test_size_and_shape_are_validated(sandbox: SandboxHandle) -> None:
    """0 or 101 e-mails, an object instead of a list, or an unknown mode: 422 in Resend's shape."""
    for body, headers in (
        ([], {}),
        ([email(n) for n in range(101)], {}),
        (email(1), {}),
        ([email(1)], {"x-batch-validation": "lenient"}),
    ):
        response = await post(sandbox, body, **headers)
        assert response.status_code == 422
        assert response.json()["name"] == "validation_error"
    assert (await sandbox.state())["emails"] == []


async def test_strict_refuses_the_whole_batch_permissive_only_the_bad_one(
    sandbox: SandboxHandle,
) -> None:
    """Strict (the default): one bad address refuses all; permissive: the others are sent, and
    the bad one comes back in `errors` with its index."""
    body = [email(0), email(1, to="not-an-address"), email(2)]
    strict = await post(sandbox, body)
    assert strict.status_code == 422 and "not-an-address" in strict.json()["message"]
    assert (await sandbox.state())["emails"] == []
    permissive = await post(sandbox, body, **{"x-batch-validation": "permissive"})
    assert permissive.status_code == 200
    answer = permissive.json()
    assert len(answer["data"]) == 2
    assert [e["index"] for e in answer["errors"]] == [1]
    sent = (await sandbox.state())["emails"]
    assert [e["id"] for e in sent] == [d["id"] for d in answer["data"]]
    assert [e["to"] for e in sent] == [["c0@example.com"], ["c2@example.com"]]


async def test_the_batch_key_replays_the_first_ids(
    clients: ProviderClients, sandbox: SandboxHandle
) -> None:
    """The same key and bodies answer the first ids without sending again; other bodies under
    that key are a conflict."""
    first = await clients.resend.send_batch([email(1), email(2)], "batch-k")
    again = await clients.resend.send_batch([email(1), email(2)], "batch-k")
    assert again.ids == first.ids
    with pytest.raises(PermanentError) as raised:
        await clients.resend.send_batch([email(1), email(3)], "batch-k")
    assert raised.value.code == "invalid_idempotent_request"
    assert len((await sandbox.state())["emails"]) == 2


async def test_faults_apply_and_a_lost_answer_forgets_the_key(
    clients: ProviderClients, sandbox: SandboxHandle
) -> None:
    """A fault before the effect sends nothing and frees the key; `after_effect` sends, loses
    the answer and the key, so the same batch again is sent again."""
    await sandbox.fault("resend", "send_batch", status=503, times=1)
    with pytest.raises(TransientError):
        await clients.resend.send_batch([email(1)], "k1")
    assert (await sandbox.state())["emails"] == []
    await sandbox.fault("resend", "send_batch", status=500, times=1, after_effect=True)
    with pytest.raises(TransientError):
        await clients.resend.send_batch([email(1)], "k1")
    assert len((await sandbox.state())["emails"]) == 1
    await clients.resend.send_batch([email(1)], "k1")
    assert len((await sandbox.state())["emails"]) == 2
