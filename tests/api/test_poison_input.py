"""Bad input is refused at the edge with a 4xx in the error shape, and nothing is written or
started: no 500, no endless 503, no workflow wedged on a value the database refuses."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool
from temporalio.client import Client

from api.app import create_app
from providers.mercadopago_signature import sign
from settings import Settings
from tests.conftest import TEST_SECRETS
from tests.credits.conftest import SHIPMENT, Customer, Ledger
from tests.sagas.conftest import person
from tests.support import app_client

pytestmark = [pytest.mark.db, pytest.mark.temporal]

ADMIN = {"Authorization": f"Bearer {TEST_SECRETS['admin_token']}"}
ARABIC_INDIC_CEP = "٠١٣١٠١٠٠"  # eight digits for `\d`, none for the database's [0-9]


@pytest.fixture
async def api(
    pool: AsyncConnectionPool, settings: Settings, temporal_client: Client
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, pool=pool, temporal=temporal_client)
    async with app_client(app) as client:
        yield client


async def _count(pool: AsyncConnectionPool, table: str) -> int:
    async with pool.connection() as conn:
        cur = await conn.execute(f"SELECT count(*) FROM {table}")
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


@pytest.mark.parametrize(
    "change",
    [
        {"recipient_name": "Maria\x00Silva"},
        {"reference": "pedido\x00 12"},
        {"recipient_name": "Maria\u202eavliS"},  # right-to-left override
        {"recipient_name": "\u200b\u200b"},  # zero-width spaces only
        {"recipient_name": "Maria\u2066Silva"},  # bidi isolate
        {"destination_postal_code": ARABIC_INDIC_CEP},
        {"destination_postal_code": "０１３１０-１００"},  # full-width digits
    ],
)
async def test_shipment_poison_fields_are_422_and_nothing_is_spent(
    api: httpx.AsyncClient, pool: AsyncConnectionPool, change: dict[str, str]
) -> None:
    """NUL, invisible or bidi characters in text and non-ASCII digits in the CEP are a 422 on
    that field; no shipment is written."""
    customer: Customer = await Ledger(pool).customer()
    response = await api.post(
        "/api/v1/shipments", json=SHIPMENT | change, headers=customer.headers()
    )
    error = _error(response, 422)
    assert error["details"][0]["field"] == next(iter(change))
    assert await _count(pool, "shipments") == 0


async def test_checkout_plan_id_with_nul_is_422(
    api: httpx.AsyncClient, pool: AsyncConnectionPool
) -> None:
    """A NUL in the plan id is a 422 on plan_id, not a database error."""
    customer = await Ledger(pool).customer()
    response = await api.post(
        "/api/v1/checkout/create",
        json={"plan_id": "basic\x00", "billing_type": "PIX"},
        headers=customer.headers(),
    )
    assert _error(response, 422)["details"][0]["field"] == "plan_id"


@pytest.mark.parametrize("name", ["Ana\x00Souza", "Ana \u202eazuoS", "Ana\u200bSouza"])
async def test_registration_name_with_control_or_invisible_characters_is_422(
    api: httpx.AsyncClient, pool: AsyncConnectionPool, name: str
) -> None:
    """A registration name with NUL, invisible or bidi characters is a 422, not a 503."""
    response = await api.post("/api/v1/profiles/register", json=person(0, name=name))
    assert _error(response, 422)["details"][0]["field"] == "name"
    assert await _count(pool, "profiles") == 0


@pytest.mark.parametrize("path", ["", "/retry"])
async def test_admin_order_id_with_nul_is_422(api: httpx.AsyncClient, path: str) -> None:
    """An admin order id holding NUL is refused at the edge, not sent to PostgreSQL."""
    method = "POST" if path else "GET"
    response = await api.request(method, f"/api/v1/admin/orders/abc%00def{path}", headers=ADMIN)
    assert _error(response, 422)["details"][0]["field"] == "order_id"


@pytest.mark.parametrize(
    "path", ["/api/v1/profiles/register", "/webhooks/asaas", "/api/v1/shipments"]
)
async def test_json_nested_20000_deep_is_400(api: httpx.AsyncClient, path: str) -> None:
    """A body nested 20,000 deep is 400 malformed_json, not a RecursionError (500)."""
    deep = "[" * 20_000 + "]" * 20_000
    response = await api.post(path, content=deep, headers={"content-type": "application/json"})
    assert _error(response, 400)["code"] == "malformed_json"


async def test_strings_that_look_deep_are_not(
    api: httpx.AsyncClient, pool: AsyncConnectionPool
) -> None:
    """Brackets inside strings do not count as nesting: such a shipment is created."""
    customer = await Ledger(pool).customer()
    name = "[" * 60 + "{"
    response = await api.post(
        "/api/v1/shipments", json=SHIPMENT | {"recipient_name": name}, headers=customer.headers()
    )
    assert response.status_code == 201, response.text


def _apphook(order_id: Any, **customer: str) -> dict[str, Any]:
    return {
        "event": "OrderPaid",
        "event_type": "",
        "data": {
            "id": order_id,
            "total": "49.90",
            "status": "aprovado",
            "payment_type": "Pix",
            "customer": {"firstname": "Bia", "lastname": "Lima", "email": "bia@example.com"}
            | customer,
        },
    }


@pytest.mark.parametrize(
    "hook",
    [
        _apphook(1, firstname="Bia\x00"),
        _apphook(1, lastname="Li\u202ema"),
        _apphook(1, email="bia\x00@example.com"),
        _apphook("9" * 1100),  # longer than Temporal's workflow-id limit
        _apphook("12;34"),
        _apphook("12\x00"),
        _apphook(1) | {"event": "OrderPaid\x00"},
        {"event": "OrderPaid", "data": {"id": 1, "total": "NaN"}},
    ],
)
async def test_appmax_poison_hook_is_400_and_starts_nothing(
    api: httpx.AsyncClient, temporal_client: Client, hook: dict[str, Any]
) -> None:
    """An Apphook the workflow or the database could not hold is refused with 400 (AppMax sees
    the refusal) instead of a 200 followed by a stage write that fails forever, or a 503."""
    response = await api.post(
        "/webhooks/appmax", params={"token": TEST_SECRETS["appmax_webhook_token"]}, json=hook
    )
    assert _error(response, 400)["code"] == "invalid_payload"


@pytest.mark.parametrize(
    "event",
    [
        {"id": "evt_1\x00", "event": "PAYMENT_CONFIRMED"},
        {"id": "evt_" + "1" * 200, "event": "PAYMENT_CONFIRMED"},
        {"id": "evt_1", "event": "PAYMENT\x00"},
        {"id": "evt_1", "event": "PAYMENT_CONFIRMED", "payment": {"id": "pay\x00"}},
        {"id": "evt_1", "event": "PAYMENT_CONFIRMED", "extra": {"note": "a\x00b"}},
    ],
)
async def test_asaas_event_with_nul_or_odd_id_is_400(
    api: httpx.AsyncClient, pool: AsyncConnectionPool, event: dict[str, Any]
) -> None:
    """An Asaas event with a NUL anywhere (jsonb cannot hold it) or an id outside the safe
    charset is a 400, not a 503 that Asaas re-sends until it pauses the queue."""
    response = await api.post(
        "/webhooks/asaas",
        json=event,
        headers={"asaas-access-token": TEST_SECRETS["asaas_webhook_token"]},
    )
    assert _error(response, 400)["code"] == "malformed_event"
    assert await _count(pool, "asaas_events") == 0


def _mp(data_id: str, body: dict[str, Any]) -> dict[str, Any]:
    request_id = str(uuid.uuid4())
    header = sign(
        TEST_SECRETS["mercadopago_webhook_secret"],
        data_id=data_id,
        request_id=request_id,
        ts=int(time.time()),
    )
    return {
        "params": {"data.id": data_id, "type": "payment"},
        "headers": {"x-signature": header, "x-request-id": request_id},
        "content": json.dumps(body),
    }


async def test_mercadopago_id_that_rewrites_the_manifest_is_401(api: httpx.AsyncClient) -> None:
    """A signed data.id holding `;request-id:` is refused: its manifest is ambiguous."""
    response = await api.post("/webhooks/mercadopago", **_mp("1;request-id:x", {}))
    assert _error(response, 401)["code"] == "invalid_signature"


async def test_mercadopago_action_with_nul_is_400(api: httpx.AsyncClient) -> None:
    """A NUL in the notification's action (it travels into the workflow) is a 400."""
    body = {"type": "payment", "action": "payment.created\x00", "data": {"id": "123"}}
    response = await api.post("/webhooks/mercadopago", **_mp("123", body))
    assert _error(response, 400)["code"] == "invalid_payload"


async def test_registration_password_with_a_control_character_is_422(
    api: httpx.AsyncClient, pool: AsyncConnectionPool
) -> None:
    """A password holding NUL (the auth provider's database cannot store it) is a 422 on
    password, not a failure at the provider."""
    response = await api.post(
        "/api/v1/profiles/register", json=person(0, password="segredo\x00123")
    )
    assert _error(response, 422)["details"][0]["field"] == "password"
    assert await _count(pool, "profiles") == 0
