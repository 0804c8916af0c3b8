"""The control API fires webhooks at the gateway exactly as each provider would."""

from __future__ import annotations

import time
from datetime import date
from decimal import Decimal

import pytest

from providers.appmax import Apphook
from providers.mercadopago_signature import verify
from tests.conftest import TEST_SECRETS
from tests.sandbox.conftest import Gateway, json_of
from tests.support import SandboxHandle, free_port

pytestmark = pytest.mark.sandbox


async def new_payment(sandbox: SandboxHandle, **fields: object) -> str:
    made = await sandbox.http.post(
        "/_sandbox/mercadopago/payments",
        json={"payer_email": "ana@example.com", "amount": "49.90", **fields},
    )
    assert made.status_code == 201
    return str(made.json()["id"])


async def test_mp_notification_is_correctly_signed(
    sandbox: SandboxHandle, gateway: Gateway
) -> None:
    """The notification carries data.id in the query and an x-signature our verifier accepts."""
    payment_id = await new_payment(sandbox)
    sent = await sandbox.http.post(f"/_sandbox/mercadopago/payments/{payment_id}/notify")
    assert sent.json()["status_code"] == 200
    [delivery] = gateway.deliveries
    assert delivery.path == "/webhooks/mercadopago"
    assert delivery.query == {"data.id": payment_id, "type": "payment"}
    body = json_of(delivery)
    assert (body["type"], body["action"], body["data"]) == (
        "payment",
        "payment.created",
        {"id": payment_id},
    )
    verify(
        TEST_SECRETS["mercadopago_webhook_secret"],
        x_signature=delivery.headers["x-signature"],
        x_request_id=delivery.headers["x-request-id"],
        data_id=delivery.query["data.id"],
        now=time.time(),
        tolerance_seconds=60,
    )


async def test_second_notification_is_an_update_and_ts_unit_selectable(
    sandbox: SandboxHandle, gateway: Gateway
) -> None:
    """Later notifications say payment.updated; ts may be sent in seconds instead of ms."""
    payment_id = await new_payment(sandbox, status="pending")
    await sandbox.http.post(f"/_sandbox/mercadopago/payments/{payment_id}/notify")
    await sandbox.http.post(
        f"/_sandbox/mercadopago/payments/{payment_id}/notify", json={"ts_unit": "s"}
    )
    first, second = gateway.deliveries
    assert json_of(second)["action"] == "payment.updated"
    ts_first = first.headers["x-signature"].split(",")[0].removeprefix("ts=")
    ts_second = second.headers["x-signature"].split(",")[0].removeprefix("ts=")
    assert len(ts_first) == 13 and len(ts_second) == 10


async def test_apphook_carries_the_token_and_standard_envelope(
    sandbox: SandboxHandle, gateway: Gateway
) -> None:
    """An Apphook arrives with ?token= and parses; a later event reuses the order's data."""
    customer = {"firstname": "Ana", "lastname": "Souza", "email": "a@x.com", "phone": "11999"}
    sent = await sandbox.http.post(
        "/_sandbox/appmax/orders",
        json={"event": "OrderPaid", "customer": customer, "total": 97, "payment_type": "Pix"},
    )
    order_id = sent.json()["order_id"]
    await sandbox.http.post(
        "/_sandbox/appmax/orders", json={"event": "OrderRefund", "order_id": order_id}
    )
    paid, refund = gateway.deliveries
    assert paid.query == {"token": TEST_SECRETS["appmax_webhook_token"]}
    hook = Apphook.model_validate(json_of(paid))
    assert (hook.event, hook.data.id, hook.data.status) == ("OrderPaid", str(order_id), "aprovado")
    refunded = Apphook.model_validate(json_of(refund))
    assert refunded.revokes and refunded.data.customer.email == "a@x.com"


async def test_apphooks_carry_the_product_unless_told_not_to(
    sandbox: SandboxHandle, gateway: Gateway
) -> None:
    """entrega-acesso by default, another product when named, none for `product_id: null`;
    a later event for the order repeats its products."""
    for fields in ({}, {"product_id": "outro"}, {"product_id": None}):
        await sandbox.http.post("/_sandbox/appmax/orders", json={"event": "OrderPaid", **fields})
    order_id = json_of(gateway.deliveries[0])["data"]["id"]
    await sandbox.http.post(
        "/_sandbox/appmax/orders", json={"event": "OrderRefund", "order_id": order_id}
    )
    hooks = [Apphook.model_validate(json_of(d)).data for d in gateway.deliveries]
    skus = [[p.sku for p in h.products] if h.products is not None else None for h in hooks]
    assert skus == [["entrega-acesso"], ["outro"], None, ["entrega-acesso"]]
    assert hooks[0].total_products == hooks[0].total


async def test_asaas_event_for_a_subscription_charge(
    sandbox: SandboxHandle, gateway: Gateway
) -> None:
    """A subscription's first charge exists; confirming it sends the Asaas event shape."""
    headers = {"access_token": TEST_SECRETS["asaas_api_key"], "User-Agent": "Entrega"}
    customer = await sandbox.http.post(
        "/asaas/v3/customers",
        headers=headers,
        json={"name": "Ana", "cpfCnpj": "52998224725", "externalReference": "p1"},
    )
    subscription = await sandbox.http.post(
        "/asaas/v3/subscriptions",
        headers=headers,
        json={
            "customer": customer.json()["id"],
            "billingType": "PIX",
            "value": 49.9,
            "nextDueDate": "2026-12-01",
            "cycle": "MONTHLY",
            "externalReference": "co:p1:1",
        },
    )
    [charge] = (await sandbox.state())["asaas_payments"]
    await sandbox.http.post(
        f"/_sandbox/asaas/payments/{charge['id']}/events", json={"event": "PAYMENT_CONFIRMED"}
    )
    [delivery] = gateway.deliveries
    assert delivery.headers["asaas-access-token"] == TEST_SECRETS["asaas_webhook_token"]
    event = json_of(delivery)
    assert event["id"].startswith("evt_") and event["event"] == "PAYMENT_CONFIRMED"
    payment = event["payment"]
    assert (payment["subscription"], payment["status"], payment["dueDate"]) == (
        subscription.json()["id"],
        "CONFIRMED",
        "2026-12-01",
    )
    assert payment["externalReference"] == "co:p1:1"
    renewal = await sandbox.http.post(
        f"/_sandbox/asaas/subscriptions/{subscription.json()['id']}/payments"
    )
    assert renewal.json()["dueDate"] == "2027-01-01"


async def test_gateway_answer_is_reported_not_hidden(
    sandbox: SandboxHandle, gateway: Gateway
) -> None:
    """A 503 from the gateway comes back to the caller so tests can check re-send behaviour."""
    gateway.status = 503
    payment_id = await new_payment(sandbox)
    sent = await sandbox.http.post(f"/_sandbox/mercadopago/payments/{payment_id}/notify")
    assert (sent.status_code, sent.json()["status_code"]) == (200, 503)


async def test_unreachable_gateway_is_a_502(sandbox: SandboxHandle) -> None:
    """With nothing listening at the gateway the control call answers 502, naming the URL."""
    await sandbox.set_gateway(f"http://127.0.0.1:{free_port()}")
    payment_id = await new_payment(sandbox)
    sent = await sandbox.http.post(f"/_sandbox/mercadopago/payments/{payment_id}/notify")
    assert sent.status_code == 502
    assert sent.json()["error"]["code"] == "gateway_unreachable"


async def test_asaas_paid_renewal_and_payment_reads(
    sandbox: SandboxHandle, gateway: Gateway, clients
) -> None:
    """The next charge created already paid is RECEIVED, due on the given date, and its
    PAYMENT_RECEIVED goes out; the client reads it back by id, by filters, and the subscription."""
    asaas = clients.asaas
    customer = await asaas.create_customer("Ana", "52998224725", "a@example.com", None, "p1")
    subscription = await asaas.create_subscription(
        customer.id, "PIX", Decimal("49.90"), date(2026, 12, 1), "MONTHLY", "x", "co:p1:1"
    )
    paid = await sandbox.http.post(
        f"/_sandbox/asaas/subscriptions/{subscription.id}/payments",
        json={"status": "RECEIVED", "dueDate": "2027-01-05"},
    )
    assert paid.status_code == 201, paid.text
    [delivery] = gateway.deliveries
    event = json_of(delivery)
    assert (event["event"], event["payment"]["id"]) == ("PAYMENT_RECEIVED", paid.json()["id"])

    read = await asaas.get_payment(paid.json()["id"])
    assert read is not None
    assert (read.status, read.due_date, read.subscription) == (
        "RECEIVED",
        date(2027, 1, 5),
        subscription.id,
    )
    assert await asaas.get_payment("pay_unknown") is None
    listed = await asaas.list_payments(
        subscription=subscription.id, **{"dueDate[ge]": "2027-01-01"}
    )
    assert [p.id for p in listed] == [read.id]
    assert [p.status for p in await asaas.list_payments(status="PENDING")] == ["PENDING"]
    found = await asaas.get_subscription(subscription.id)
    assert found is not None and found.external_reference == "co:p1:1"
    assert [s.id for s in await asaas.find_subscriptions("co:p1:1")] == [subscription.id]
    await asaas.delete_subscription(subscription.id)
    assert await asaas.get_subscription(subscription.id) is None
