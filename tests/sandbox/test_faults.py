"""Each fault kind does what it says: a status, for N calls or a share of them, latency, a hang."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from providers.clients import ProviderClients
from providers.errors import NotFoundError, RateLimitedError, TransientError
from sandbox.faults import OPERATIONS, FaultSpec, FaultStore
from tests.sandbox.conftest import CLIENT_TIMEOUT_SECONDS
from tests.support import SandboxHandle

pytestmark = pytest.mark.sandbox


async def test_status_fault_answers_in_the_services_shape(
    clients: ProviderClients, sandbox: SandboxHandle
) -> None:
    """A status fault answers that status with the provider's own error body."""
    await sandbox.fault("asaas", "list_customers", status=503)
    response = await sandbox.http.get(
        "/asaas/v3/customers",
        headers={"access_token": "test-asaas-api-key", "User-Agent": "Entrega"},
    )
    assert response.status_code == 503
    assert response.json()["errors"][0]["code"] == "service_unavailable"
    with pytest.raises(TransientError) as raised:
        await clients.asaas.list_customers()
    assert raised.value.status == 503


async def test_times_fails_only_the_first_n_calls(
    clients: ProviderClients, sandbox: SandboxHandle
) -> None:
    """With times=2 the first two matching calls fail and the third goes through."""
    await sandbox.fault("supabase", "list_users", status=500, times=2)
    for _ in range(2):
        with pytest.raises(TransientError):
            await clients.supabase.list_users()
    assert await clients.supabase.list_users() == []


async def test_fault_targets_only_its_service_and_operation(
    clients: ProviderClients, sandbox: SandboxHandle
) -> None:
    """A fault on one operation leaves the service's other operations and other services alone."""
    await sandbox.fault("supabase", "create_user", status=500)
    assert await clients.supabase.list_users() == []
    assert await clients.asaas.list_customers() == []
    with pytest.raises(TransientError):
        await clients.supabase.create_user("a@x.com", None, "s3cret-pass")


async def test_wildcard_operation_covers_the_whole_service(
    clients: ProviderClients, sandbox: SandboxHandle
) -> None:
    """Operation "*" applies to every operation of the service; a 429 carries its wait."""
    await sandbox.fault("asaas", "*", status=429, retry_after=3)
    with pytest.raises(RateLimitedError) as listed:
        await clients.asaas.list_customers()
    with pytest.raises(RateLimitedError):
        await clients.asaas.delete_customer("cus_1")
    assert listed.value.retry_after == 3.0


@pytest.mark.parametrize(("rate", "failures"), [(0.0, 0), (1.0, 5)])
async def test_rate_bounds_fail_never_or_always(
    clients: ProviderClients, sandbox: SandboxHandle, rate: float, failures: int
) -> None:
    """rate=0 never fires and rate=1 always does."""
    await sandbox.fault("mercadopago", "get_payment", status=500, rate=rate)
    failed = 0
    for _ in range(5):
        try:
            await clients.mercadopago.get_payment("1")
        except NotFoundError:
            pass
        except TransientError:
            failed += 1
    assert failed == failures


def test_rate_fires_about_that_share_of_calls() -> None:
    """rate=0.3 fires on roughly 30% of calls (seeded, so the count is exact and stable)."""
    store = FaultStore(random.Random(7))
    store.add(FaultSpec(service="resend", operation="send_email", status=500, rate=0.3))
    fired = sum(bool(store.fire("resend", "send_email")) for _ in range(1000))
    assert 250 < fired < 350


async def test_latency_delays_a_normal_answer(
    clients: ProviderClients, sandbox: SandboxHandle
) -> None:
    """latency_ms without a status slows the call down but it still succeeds."""
    await sandbox.fault("supabase", "list_users", latency_ms=300)
    started = time.monotonic()
    assert await clients.supabase.list_users() == []
    assert time.monotonic() - started >= 0.3


async def test_timeout_makes_the_client_time_out(
    clients: ProviderClients, sandbox: SandboxHandle
) -> None:
    """A hang lasts until the client gives up, which it reports as a transient timeout."""
    await sandbox.fault("lovable", "create_user", timeout=True, times=1)
    started = time.monotonic()
    with pytest.raises(TransientError) as raised:
        await clients.lovable.create_user("a@x.com", "pw-123456", "Ana", "o1", "k1")
    assert raised.value.code == "timeout"
    assert CLIENT_TIMEOUT_SECONDS <= time.monotonic() - started < CLIENT_TIMEOUT_SECONDS + 2
    retried = await clients.lovable.create_user("a@x.com", "pw-123456", "Ana", "o1", "k1")
    assert retried.created


async def test_clearing_faults_restores_service(
    clients: ProviderClients, sandbox: SandboxHandle
) -> None:
    """DELETE /_sandbox/faults removes every fault at once."""
    await sandbox.fault("resend", status=500)
    await sandbox.fault("asaas", status=500)
    assert len((await sandbox.http.get("/_sandbox/faults")).json()) == 2
    await sandbox.clear_faults()
    assert await clients.asaas.list_customers() == []
    assert (await sandbox.http.get("/_sandbox/faults")).json() == []


@pytest.mark.parametrize(
    "spec",
    [
        {"service": "paypal", "status": 500},
        {"service": "asaas", "operation": "send_email", "status": 500},
        {"service": "asaas", "status": 200},
        {"service": "asaas"},
        {"service": "asaas", "status": 500, "times": 1, "rate": 0.5},
    ],
)
async def test_nonsense_faults_are_refused(sandbox: SandboxHandle, spec: dict[str, object]) -> None:
    """Unknown services or operations, non-error statuses or empty faults answer 422."""
    response = await sandbox.http.post("/_sandbox/faults", json=spec)
    assert response.status_code == 422


@pytest.mark.parametrize("spec", [{"service": "paypal"}, {"service": "asaas", "operation": "x"}])
async def test_unknown_names_answer_the_valid_ones(
    sandbox: SandboxHandle, spec: dict[str, object]
) -> None:
    """An unknown service or operation answers 422 listing every service's operations."""
    response = await sandbox.http.post("/_sandbox/faults", json={**spec, "status": 500})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["ctx"]["operations"] == {k: sorted(v) for k, v in OPERATIONS.items()}
    assert "supabase: create_user, delete_user, list_users, token" in error["msg"]


async def test_clearing_faults_releases_a_hanging_request(sandbox: SandboxHandle) -> None:
    """A request hung by a fault is let go (504) as soon as the faults are cleared."""
    await sandbox.fault("resend", "send_email", timeout=True)
    pending = asyncio.create_task(
        sandbox.http.post(
            "/resend/emails",
            json={},
            headers={"Authorization": "Bearer re_test_resend_key"},
            timeout=30,
        )
    )
    await asyncio.sleep(0.2)
    assert not pending.done()
    await sandbox.clear_faults()
    response = await asyncio.wait_for(pending, timeout=5)
    assert response.status_code == 504
