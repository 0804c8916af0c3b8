"""Each production client against the sandbox over real HTTP: the two agree on the contract."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import jwt
import pytest

from providers.clients import ProviderClients
from providers.errors import ConflictError, NotFoundError, PermanentError
from tests.conftest import TEST_SECRETS
from tests.providers.calls import MESSAGE
from tests.support import SandboxHandle

pytestmark = pytest.mark.sandbox

CPF = "529.982.247-25"


async def test_mercadopago_payment_round_trip(
    providers: ProviderClients, sandbox: SandboxHandle
) -> None:
    """A payment made in the sandbox reads back through the client, status changes included."""
    made = await sandbox.http.post(
        "/_sandbox/mercadopago/payments",
        json={"payer_email": "ana@example.com", "amount": "49.90", "status": "pending"},
    )
    payment_id = str(made.json()["id"])
    payment = await providers.mercadopago.get_payment(payment_id)
    assert (payment.status, payment.transaction_amount) == ("pending", Decimal("49.9"))
    await sandbox.http.post(
        f"/_sandbox/mercadopago/payments/{payment_id}/status", json={"status": "approved"}
    )
    approved = await providers.mercadopago.get_payment(payment_id)
    assert approved.status == "approved" and approved.date_approved is not None
    with pytest.raises(NotFoundError):
        await providers.mercadopago.get_payment("1")


async def test_asaas_customer_and_subscription_lifecycle(
    providers: ProviderClients, sandbox: SandboxHandle
) -> None:
    """ensure_customer creates once, subscriptions attach, delete is idempotent and cascades."""
    asaas = providers.asaas
    customer, created = await asaas.ensure_customer("Ana", CPF, "a@x.com", None, "p1")
    again, created_again = await asaas.ensure_customer("Ana", CPF, "a@x.com", None, "p1")
    assert (created, created_again, again.id) == (True, False, customer.id)
    subscription = await asaas.create_subscription(
        customer.id, "PIX", Decimal("49.90"), date(2026, 12, 1), "MONTHLY", "Plano", "co:p1:1"
    )
    assert subscription.next_due_date == date(2026, 12, 1)
    assert (await asaas.find_subscription("co:p1:1")) is not None
    await asaas.delete_customer(customer.id)
    await asaas.delete_customer(customer.id)
    await asaas.delete_subscription(subscription.id)
    state = await sandbox.state()
    assert state["asaas_customers"] == [] and state["asaas_subscriptions"] == []


async def test_asaas_refuses_an_invalid_cpf(providers: ProviderClients) -> None:
    """An invalid CPF is a permanent error with Asaas' own code."""
    with pytest.raises(PermanentError) as raised:
        await providers.asaas.create_customer("Ana", "123.456.789-00", "a@x.com", None, "p1")
    assert (raised.value.status, raised.value.code) == (400, "invalid_cpfCnpj")


async def test_asaas_lists_every_page(providers: ProviderClients) -> None:
    """list_customers follows the sandbox's pages past its 100-item limit."""
    for n in range(105):
        await providers.asaas.create_customer("Ana", CPF, "a@x.com", None, f"p{n}")
    customers = await providers.asaas.list_customers()
    assert sorted(c.external_reference or "" for c in customers) == sorted(
        f"p{n}" for n in range(105)
    )


async def test_supabase_user_lifecycle_and_token(
    providers: ProviderClients, sandbox: SandboxHandle
) -> None:
    """Create, duplicate, exact look-up, sign in with a verifiable JWT, idempotent delete."""
    auth = providers.supabase
    user = await auth.create_user("Ana@Example.com", "+55 11 98765-4321", "s3cret-pass", {"a": 1})
    with pytest.raises(ConflictError) as email_dup:
        await auth.create_user("ana@example.com", None, "s3cret-pass")
    with pytest.raises(ConflictError) as phone_dup:
        await auth.create_user("other@example.com", "5511987654321", "s3cret-pass")
    assert (email_dup.value.code, phone_dup.value.code) == ("email_exists", "phone_exists")
    await auth.create_user("xana@example.com", None, "s3cret-pass")
    found = await auth.find_user_by_email("ana@example.com")
    assert found is not None and found.id == user.id
    token = await auth.sign_in_with_password("ana@example.com", "s3cret-pass")
    claims = jwt.decode(
        token, TEST_SECRETS["supabase_jwt_secret"], algorithms=["HS256"], audience="authenticated"
    )
    assert claims["sub"] == user.id and claims["exp"] > claims["iat"]
    with pytest.raises(PermanentError):
        await auth.sign_in_with_password("ana@example.com", "wrong-pass")
    await auth.delete_user(user.id)
    await auth.delete_user(user.id)
    assert [u.email for u in await auth.list_users()] == ["xana@example.com"]


async def test_lovable_idempotent_create_and_deactivate(
    providers: ProviderClients, sandbox: SandboxHandle
) -> None:
    """Same key replays the first answer; same e-mail with a new key finds the user."""
    lovable = providers.lovable
    first = await lovable.create_user("a@x.com", "pw-123456", "Ana", "o1", "k1")
    replay = await lovable.create_user("a@x.com", "pw-123456", "Ana", "o1", "k1")
    by_email = await lovable.create_user("A@x.com", "other-pw-1", "Ana", "o2", "k2")
    assert (first.created, replay.created, by_email.created) == (True, True, False)
    assert first.user_id == replay.user_id == by_email.user_id
    with pytest.raises(ConflictError):
        await lovable.create_user("b@x.com", "pw-123456", "Bia", "o3", "k1")
    await lovable.deactivate_user(first.user_id)
    await lovable.deactivate_user("no-such-user")
    [user] = (await sandbox.state())["lovable_users"]
    assert user["active"] is False
    login = await sandbox.http.post(
        "/_sandbox/lovable/login", json={"email": "a@x.com", "password": "pw-123456"}
    )
    assert login.status_code == 403  # the password kept, the access gone


async def test_resend_sends_once_per_key(
    providers: ProviderClients, sandbox: SandboxHandle
) -> None:
    """Same key and body: one e-mail, same id; same key, other body: ConflictError."""
    first = await providers.resend.send_email(MESSAGE, "wf-1:credentials")
    assert await providers.resend.send_email(MESSAGE, "wf-1:credentials") == first
    changed = MESSAGE.model_copy(update={"subject": "Outro"})
    with pytest.raises(ConflictError) as raised:
        await providers.resend.send_email(changed, "wf-1:credentials")
    assert raised.value.code == "invalid_idempotent_request"
    [email] = (await sandbox.state())["emails"]
    assert (email["id"], email["to"], email["tags"]) == (
        first,
        ["ana@example.com"],
        {"kind": "credentials"},
    )
    assert email["idempotency_key"] == "wf-1:credentials"
