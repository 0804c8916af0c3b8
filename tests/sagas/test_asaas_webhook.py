"""POST /webhooks/asaas: authenticated and well-formed before anything is recorded; not recorded
means not acknowledged. (What an event does: test_asaas_payments.py.)"""

from __future__ import annotations

import httpx
import pytest

from api.app import create_app
from tests.conftest import TEST_SECRETS

pytestmark = pytest.mark.db
HEADERS = {"asaas-access-token": TEST_SECRETS["asaas_webhook_token"]}


@pytest.fixture
async def api(settings, pool):
    app = create_app(settings, pool=pool)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client


def _event(event_id: str, event: str, due: str, subscription: str = "sub_1") -> dict:
    return {
        "id": event_id,
        "event": event,
        "dateCreated": "2026-11-23 10:00:00",
        "payment": {
            "id": f"pay_{event_id}",
            "customer": "cus_1",
            "subscription": subscription,
            "value": 49.9,
            "status": "CONFIRMED",
            "dueDate": due,
        },
    }


async def test_bad_token_is_refused_and_nothing_recorded(api, pool) -> None:
    """A missing or wrong asaas-access-token answers 401 and records nothing."""
    body = _event("evt_1", "PAYMENT_CONFIRMED", "2026-11-23")
    assert (await api.post("/webhooks/asaas", json=body)).status_code == 401
    wrong = {"asaas-access-token": "nope"}
    assert (await api.post("/webhooks/asaas", json=body, headers=wrong)).status_code == 401
    async with pool.connection() as conn:
        count = await (await conn.execute("SELECT count(*) FROM asaas_events")).fetchone()
    assert count == (0,)


async def test_malformed_event_is_400(api) -> None:
    """A body that is not JSON answers 400 malformed_event with one field/message pair."""
    response = await api.post("/webhooks/asaas", content=b"{not json", headers=HEADERS)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "malformed_event"
    [detail] = error["details"]
    assert detail["field"] is None and detail["message"].startswith("JSON malformado")


async def test_malformed_event_names_each_field(api) -> None:
    """An event missing its id and with a bad due date names both fields, without pydantic's
    raw text or documentation URLs."""
    body = {"event": "PAYMENT_CONFIRMED", "payment": {"id": "pay_1", "dueDate": "ontem"}}
    response = await api.post("/webhooks/asaas", json=body, headers=HEADERS)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "malformed_event"
    assert sorted(d["field"] for d in error["details"]) == ["id", "payment.dueDate"]
    assert all(set(d) == {"field", "message", "type"} for d in error["details"])
    assert "pydantic" not in response.text


@pytest.mark.parametrize("payment_id", ["pay_\x00nul", "pay_" + "9" * 300], ids=["nul", "long"])
async def test_payment_id_that_cannot_be_handed_off_is_400(api, pool, payment_id) -> None:
    """A payment id that could never name a workflow (NUL, beyond Temporal's id limit) is a 400
    on payment.id with nothing recorded, not a 503 that Asaas would re-send forever."""
    body = _event("evt_bad_id", "PAYMENT_CONFIRMED", "2026-11-23")
    body["payment"]["id"] = payment_id
    response = await api.post("/webhooks/asaas", json=body, headers=HEADERS)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["details"][0]["field"]) == ("malformed_event", "payment.id")
    async with pool.connection() as conn:
        count = await (await conn.execute("SELECT count(*) FROM asaas_events")).fetchone()
    assert count == (0,)


async def test_event_not_recorded_is_503(settings, pool) -> None:
    """With the database unreachable the event is not acknowledged: 503, so Asaas re-sends."""
    from psycopg_pool import AsyncConnectionPool

    closed = AsyncConnectionPool(settings.database_url, open=False)
    app = create_app(settings, pool=closed)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            response = await client.post(
                "/webhooks/asaas",
                json=_event("evt_1", "PAYMENT_CONFIRMED", "2026-11-23"),
                headers=HEADERS,
            )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "not_recorded"
