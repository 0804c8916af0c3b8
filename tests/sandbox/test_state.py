"""State is inspectable and a reset isolates one test from the next."""

from __future__ import annotations

import pytest

from providers.clients import ProviderClients
from tests.providers.calls import MESSAGE
from tests.support import SandboxHandle

pytestmark = pytest.mark.sandbox

KEYS = {
    "auth_users",
    "lovable_users",
    "emails",
    "asaas_customers",
    "asaas_subscriptions",
    "asaas_payments",
    "mp_payments",
    "webhooks",
}


async def fill(clients: ProviderClients, sandbox: SandboxHandle) -> None:
    await clients.supabase.create_user("a@x.com", None, "s3cret-pass")
    await clients.lovable.create_user("a@x.com", "pw-123456", "Ana", "o1", "lov-key")
    await clients.resend.send_email(MESSAGE, "mail-key")
    await clients.asaas.create_customer("Ana", "52998224725", "a@x.com", None, "p1")
    await sandbox.http.post(
        "/_sandbox/mercadopago/payments", json={"payer_email": "a@x.com", "amount": "10"}
    )


async def test_state_shows_records_but_never_passwords(
    clients: ProviderClients, sandbox: SandboxHandle
) -> None:
    """Every service's records appear in the state; the passwords given to them do not."""
    await fill(clients, sandbox)
    state = await sandbox.state()
    assert set(state) == KEYS
    assert all(
        len(state[k]) == 1 for k in KEYS - {"asaas_subscriptions", "asaas_payments", "webhooks"}
    )
    assert "s3cret-pass" not in str(state) and "pw-123456" not in str(state)


async def test_reset_forgets_records_keys_faults_and_gateway(
    clients: ProviderClients, sandbox: SandboxHandle
) -> None:
    """After a reset nothing remains: records, idempotency keys, faults, a changed gateway."""
    await fill(clients, sandbox)
    await sandbox.fault("asaas", "create_customer", status=500)
    await sandbox.set_gateway("http://127.0.0.1:1")
    await sandbox.reset()
    assert all(not v for v in (await sandbox.state()).values())
    assert (await sandbox.http.get("/_sandbox/faults")).json() == []
    assert (await sandbox.http.get("/_sandbox/config")).json() == {
        "gateway_url": "http://127.0.0.1:8000"
    }
    # The same keys now act afresh: a new e-mail is sent and a new Lovable user is created.
    await clients.resend.send_email(MESSAGE.model_copy(update={"subject": "Novo"}), "mail-key")
    created = await clients.lovable.create_user("b@x.com", "pw-123456", "Bia", "o2", "lov-key")
    assert created.created
    await clients.asaas.create_customer("Ana", "52998224725", "a@x.com", None, "p1")


async def test_state_reset_alone_clears_faults(sandbox: SandboxHandle) -> None:
    """DELETE /_sandbox/state by itself also removes every fault, as docs/interfaces.md promises."""
    await sandbox.fault("asaas", "create_customer", status=500)
    (await sandbox.http.delete("/_sandbox/state")).raise_for_status()
    assert (await sandbox.http.get("/_sandbox/faults")).json() == []


async def test_payment_ids_are_not_reused_after_a_reset(sandbox: SandboxHandle) -> None:
    """MP payment ids stay unique across resets (they become workflow ids in tests)."""
    ids = set()
    for _ in range(3):
        made = await sandbox.http.post(
            "/_sandbox/mercadopago/payments", json={"payer_email": "a@x.com", "amount": "10"}
        )
        ids.add(made.json()["id"])
        await sandbox.reset()
    assert len(ids) == 3
