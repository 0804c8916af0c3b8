"""`after_effect` faults: the operation takes effect, then its answer is lost, and so is the
service's memory of the request's idempotency key, for every emulated service."""

from __future__ import annotations

import pytest

from providers.clients import ProviderClients
from providers.errors import TransientError
from tests.providers.calls import MESSAGE
from tests.support import SandboxHandle

pytestmark = pytest.mark.sandbox

CPF = "529.982.247-25"


async def test_lovable_create_takes_effect_then_a_retry_is_a_new_request(
    clients: ProviderClients, sandbox: SandboxHandle
) -> None:
    """The user exists after the lost answer; the same key again answers `created: false` with
    the order that created it."""
    await sandbox.fault("lovable", "create_user", status=503, times=1, after_effect=True)
    with pytest.raises(TransientError):
        await clients.lovable.create_user("a@x.com", "pw-123456", "Ana", "o1", "o1:user")
    assert len((await sandbox.state())["lovable_users"]) == 1
    again = await clients.lovable.create_user("a@x.com", "pw-123456", "Ana", "o1", "o1:user")
    assert (again.created, again.order_id) == (False, "o1")
    assert again.created_by("o1") and not again.created_by("o2")


async def test_resend_sends_then_forgets_the_key(
    clients: ProviderClients, sandbox: SandboxHandle
) -> None:
    """The e-mail is sent though the answer is lost; the same key again sends a second one."""
    await sandbox.fault("resend", "send_email", status=500, times=1, after_effect=True)
    with pytest.raises(TransientError):
        await clients.resend.send_email(MESSAGE, "wf-1:credentials")
    assert len((await sandbox.state())["emails"]) == 1
    await clients.resend.send_email(MESSAGE, "wf-1:credentials")
    emails = (await sandbox.state())["emails"]
    assert [e["idempotency_key"] for e in emails] == ["wf-1:credentials"] * 2


async def test_supabase_and_asaas_creates_take_effect(
    clients: ProviderClients, sandbox: SandboxHandle
) -> None:
    """Services without idempotency keys keep what the lost request made."""
    await sandbox.fault("supabase", "create_user", status=502, times=1, after_effect=True)
    await sandbox.fault("asaas", "create_customer", status=500, times=1, after_effect=True)
    with pytest.raises(TransientError):
        await clients.supabase.create_user("a@x.com", None, "s3cret-pass")
    with pytest.raises(TransientError):
        await clients.asaas.create_customer(
            name="Ana", cpf_cnpj=CPF, email="a@x.com", mobile_phone=None, external_reference="p1"
        )
    state = await sandbox.state()
    assert len(state["auth_users"]) == 1 and len(state["asaas_customers"]) == 1


async def test_reads_lose_their_answer_and_refusals_are_not_faulted(
    clients: ProviderClients, sandbox: SandboxHandle
) -> None:
    """A read's answer is lost too; a request the service refuses keeps its own answer and
    leaves the fault for the next successful one."""
    made = await sandbox.http.post(
        "/_sandbox/mercadopago/payments", json={"payer_email": "a@x.com", "amount": "49.90"}
    )
    payment_id = str(made.json()["id"])
    await sandbox.fault("mercadopago", "get_payment", status=503, times=1, after_effect=True)
    refused = await sandbox.http.get(
        "/mercadopago/v1/payments/1", headers={"authorization": "Bearer test-mp-access-token"}
    )
    assert refused.status_code == 404
    with pytest.raises(TransientError):
        await clients.mercadopago.get_payment(payment_id)
    assert (await clients.mercadopago.get_payment(payment_id)).status == "approved"
