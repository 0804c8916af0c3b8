"""Only a payment for something Entrega sells provisions: end to end, both providers."""

from __future__ import annotations

from typing import Any

import pytest

from tests.purchases.stack import Stack

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox]


async def mp_payment(stack: Stack, **fields: Any) -> str:
    """An approved sandbox MP payment with these fields, notified to the gateway; its order id."""
    body = {"payer_email": "ana@example.com", "payer_first_name": "Ana", "amount": "49.90"}
    response = await stack.sandbox.http.post(
        "/_sandbox/mercadopago/payments", json={**body, **fields}
    )
    response.raise_for_status()
    payment_id = str(response.json()["id"])
    assert (await stack.mp_notify(payment_id))["status_code"] == 200
    return f"purchase:mercadopago:{payment_id}"


async def assert_parked_untouched(stack: Stack, order_id: str, reason: str) -> None:
    """Parked failed_permanent with the reason for a person, and no user, no e-mail at all."""
    order = await stack.wait_stage(order_id, "failed_permanent")
    assert order.last_error and reason in order.last_error, order.last_error
    assert order.lovable_user_id is None and order.encrypted_password is None
    state = await stack.sandbox.state()
    assert state["lovable_users"] == [] and state["emails"] == []


async def test_a_payment_for_something_else_grants_nothing(stack: Stack) -> None:
    """A R$ 9,90 MP payment for another product is parked, with no user and no e-mail."""
    order_id = await mp_payment(stack, amount="9.90", product_id="outro-produto")
    await assert_parked_untouched(stack, order_id, "'outro-produto' não está no catálogo")


async def test_an_underpaid_product_is_parked(stack: Stack) -> None:
    """The catalogue's product id paid at R$ 9,90 instead of R$ 49,90 is parked."""
    order_id = await mp_payment(stack, amount="9.90")
    await assert_parked_untouched(stack, order_id, "valor pago R$ 9,90 diferente")


async def test_another_currency_is_parked(stack: Stack) -> None:
    """49.90 in US dollars is not R$ 49,90: parked."""
    order_id = await mp_payment(stack, currency="USD")
    await assert_parked_untouched(stack, order_id, "pago em USD")


async def test_a_payment_naming_no_product_matches_by_amount(stack: Stack) -> None:
    """No items: R$ 49,90 in BRL is the catalogue's price, so access is granted; R$ 9,90 is not."""
    good = await mp_payment(stack, product_id=None)
    await stack.wait_stage(good, "completed")
    bad = await mp_payment(stack, product_id=None, amount="9.90", payer_email="rui@example.com")
    order = await stack.wait_stage(bad, "failed_permanent")
    assert "nenhum produto custava R$ 9,90" in (order.last_error or "")
    assert len((await stack.sandbox.state())["lovable_users"]) == 1


async def test_a_fixed_catalogue_and_a_retry_provision_a_parked_order(stack: Stack) -> None:
    """An operator adds the missing price (a promotion) and retries: the order completes."""
    from datetime import UTC, datetime, timedelta

    from db import products
    from workflows.purchase_client import request_retry

    order_id = await mp_payment(stack, amount="39.90")
    await stack.wait_stage(order_id, "failed_permanent")
    async with stack.pool.connection() as conn:
        now = datetime.now(UTC)
        await products.set_price(
            conn,
            product_id="entrega-acesso",
            price_cents=3990,
            valid_from=now - timedelta(hours=1),
            valid_until=now + timedelta(hours=1),
            now=now,
            by="test",
        )
    await request_retry(stack.client, order_id)
    await stack.wait_stage(order_id, "completed")
    assert (await stack.login("ana@example.com")).status_code == 200


async def test_a_parked_order_refunded_is_cancelled(stack: Stack) -> None:
    """A mismatched payment that is then refunded ends cancelled, never provisioned."""
    order_id = await mp_payment(stack, amount="9.90")
    await stack.wait_stage(order_id, "failed_permanent")
    payment_id = order_id.rsplit(":", 1)[1]
    await stack.mp_set_status(payment_id, "refunded")
    await stack.mp_notify(payment_id)
    await stack.wait_stage(order_id, "cancelled")
    assert (await stack.sandbox.state())["lovable_users"] == []


async def test_appmax_order_of_another_product_is_parked(stack: Stack) -> None:
    """An Apphook whose products name something we do not sell grants nothing."""
    sent = await stack.apphook("OrderPaid", total="9.90", product_id="outro-produto")
    order_id = f"purchase:appmax:{sent['order_id']}"
    await assert_parked_untouched(stack, order_id, "'outro-produto' não está no catálogo")


async def test_appmax_order_without_products_matches_its_total(stack: Stack) -> None:
    """The Standard Apphook (no product list) is matched by amount: R$ 49,90 passes, 9,90 not."""
    sent = await stack.apphook("OrderPaid", product_id=None)
    await stack.wait_stage(f"purchase:appmax:{sent['order_id']}", "completed")
    other = await stack.apphook(
        "OrderPaid",
        product_id=None,
        total="9.90",
        customer={"firstname": "Rui", "email": "rui@example.com"},
    )
    order = await stack.wait_stage(f"purchase:appmax:{other['order_id']}", "failed_permanent")
    assert "nenhum produto custava R$ 9,90" in (order.last_error or "")


async def test_appmax_card_interest_does_not_park_the_customer(stack: Stack) -> None:
    """A total with card interest above the price matches by `total_products`."""
    sent = await stack.apphook("OrderPaid", total="52.37", total_products="49.90")
    order = await stack.wait_stage(f"purchase:appmax:{sent['order_id']}", "completed")
    assert order.amount_cents == 5237
