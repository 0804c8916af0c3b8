"""MercadoPagoClient reads the payment fields Entrega uses, whatever shape MP gives them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from providers.errors import NotFoundError
from providers.mercadopago import MercadoPagoClient
from tests.providers.calls import SECRET
from tests.providers.conftest import Script

PAYMENT = {
    "id": 1234567890,
    "status": "approved",
    "status_detail": "accredited",
    "transaction_amount": 49.9,
    "currency_id": "BRL",
    "payment_method_id": "pix",
    "payment_type_id": "bank_transfer",
    "external_reference": "ref-1",
    "date_approved": "2026-11-23T10:00:00.000-04:00",
    "payer": {"email": "ana@example.com", "first_name": None, "last_name": None, "id": 99},
    "metadata": {"plan": "basic"},
    "collector_id": 5,
}


async def test_get_payment_parses_the_used_fields(script: Script) -> None:
    """A numeric id becomes text, the amount a Decimal, null payer names stay None."""
    script.answer(200, json=PAYMENT)
    async with script.client() as http:
        payment = await MercadoPagoClient(http, SECRET).get_payment("1234567890")
    assert payment.id == "1234567890"
    assert payment.transaction_amount == Decimal("49.9")
    assert payment.payer.email == "ana@example.com" and payment.payer.first_name is None
    assert payment.metadata == {"plan": "basic"}
    assert payment.date_approved is not None and payment.date_approved.utcoffset() is not None
    request = script.requests[0]
    assert request.url.path == "/v1/payments/1234567890"
    assert request.headers["authorization"] == f"Bearer {SECRET}"


async def test_payment_id_cannot_change_the_path(script: Script) -> None:
    """An id taken from a webhook query string is one escaped path segment."""
    script.answer(200, json=PAYMENT)
    async with script.client() as http:
        await MercadoPagoClient(http, SECRET).get_payment("../../users/me?x=1")
    assert script.requests[0].url.raw_path == b"/v1/payments/..%2F..%2Fusers%2Fme%3Fx%3D1"


async def test_error_body_fields_reach_the_error(script: Script) -> None:
    """MP's `error` and `message` become the error's code and message."""
    script.answer(404, json={"message": "Payment not found", "error": "not_found", "status": 404})
    async with script.client() as http:
        with pytest.raises(NotFoundError) as raised:
            await MercadoPagoClient(http, SECRET).get_payment("1")
    assert (raised.value.code, raised.value.message) == ("not_found", "Payment not found")


async def test_what_was_bought_is_read(script: Script) -> None:
    """`additional_info.items` (quantity and price as MP's strings), currency and creation date."""
    items = [{"id": "entrega-acesso", "title": "Acesso", "quantity": "2", "unit_price": "49.9"}]
    script.answer(
        200,
        json={
            **PAYMENT,
            "date_created": "2026-11-23T09:59:00.000-04:00",
            "additional_info": {"items": items, "ip_address": "1.2.3.4"},
        },
    )
    async with script.client() as http:
        payment = await MercadoPagoClient(http, SECRET).get_payment("1")
    assert payment.currency_id == "BRL" and payment.date_created is not None
    assert payment.additional_info and payment.additional_info.items
    [item] = payment.additional_info.items
    assert (item.id, item.quantity, item.unit_price) == ("entrega-acesso", 2, Decimal("49.9"))


async def test_a_payment_without_items_names_no_product(script: Script) -> None:
    """No `additional_info` (or a null one) parses: the payment is matched by amount alone."""
    from activities.catalogue import mercadopago_items

    for extra in ({}, {"additional_info": None}, {"additional_info": {"items": None}}):
        script.answer(200, json={**PAYMENT, **extra})
        async with script.client() as http:
            payment = await MercadoPagoClient(http, SECRET).get_payment("1")
        assert mercadopago_items(payment) == []
