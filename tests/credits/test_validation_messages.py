"""A refused shipment or grant tells the person what to fix, in pt-BR, field by field."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import TEST_SECRETS
from tests.credits.conftest import SHIPMENT, Ledger

pytestmark = pytest.mark.db

ADMIN = {"Authorization": f"Bearer {TEST_SECRETS['admin_token']}"}


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"recipient_name": "   "}, "recipient_name", "Informe o nome do destinatário"),
        ({"recipient_name": ""}, "recipient_name", "Informe o nome do destinatário"),
        ({"recipient_name": 42}, "recipient_name", "Informe o nome do destinatário"),
        ({"destination_postal_code": "1234"}, "destination_postal_code", "CEP inválido"),
        ({"destination_postal_code": 1310100}, "destination_postal_code", "CEP inválido"),
        ({"weight_grams": "500"}, "weight_grams", "Peso inválido"),
        ({"weight_grams": 500.0}, "weight_grams", "Peso inválido"),
        ({"weight_grams": True}, "weight_grams", "Peso inválido"),
        ({"weight_grams": 30001}, "weight_grams", "Peso inválido"),
        ({"reference": 7}, "reference", "Referência inválida"),
        ({"weight_grams": None}, "weight_grams", "Peso inválido"),
    ],
)
async def test_shipment_field_errors_are_pt_br(
    api: httpx.AsyncClient,
    ledger: Ledger,
    change: dict[str, object],
    field: str,
    message: str,
) -> None:
    """Each invalid field (strings for numbers included) gets its own pt-BR message, no prefix."""
    customer = await ledger.customer(monthly_credits=2)
    response = await api.post(
        "/api/v1/shipments", json=SHIPMENT | change, headers=customer.headers()
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    [detail] = error["details"]
    assert detail["field"] == field
    assert detail["message"].startswith(message), detail
    assert await ledger.count("shipments") == 0


async def test_missing_fields_are_named_in_pt_br(api: httpx.AsyncClient, ledger: Ledger) -> None:
    """A body without its required fields lists each of them as "Campo obrigatório"."""
    customer = await ledger.customer(monthly_credits=2)
    response = await api.post("/api/v1/shipments", json={}, headers=customer.headers())
    assert response.status_code == 422, response.text
    details = response.json()["error"]["details"]
    assert {d["field"]: d["message"] for d in details} == {
        "recipient_name": "Campo obrigatório",
        "destination_postal_code": "Campo obrigatório",
        "weight_grams": "Campo obrigatório",
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"credits_amount": "7"}, "Quantidade inválida"),
        ({"credits_amount": 0}, "Quantidade inválida"),
        ({"expires_at": "2099-12-31T10:00:00"}, "Informe o fuso horário"),
        ({"expires_at": "31/12/2099"}, "Data de validade inválida"),
        ({"expires_at": 4102444800}, "Data de validade inválida"),
        ({"expires_at": "2020-01-01"}, "A data de validade deve estar no futuro"),
    ],
)
async def test_grant_field_errors_are_pt_br(
    api: httpx.AsyncClient, ledger: Ledger, change: dict[str, object], message: str
) -> None:
    """An operator's bad grant is refused with a pt-BR message and grants nothing."""
    customer = await ledger.customer()
    body = {"profile_id": str(customer.profile_id), "credits_amount": 7} | change
    response = await api.post("/api/v1/admin/credit-purchases", json=body, headers=ADMIN)
    assert response.status_code == 422, response.text
    [detail] = response.json()["error"]["details"]
    assert detail["message"].startswith(message), detail
    assert await ledger.count("credit_purchases") == 0
