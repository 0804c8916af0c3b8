"""POST /webhooks/asaas: authenticated, recorded once per event id, and setting the period."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest

from api.app import create_app
from db import profiles as db_profiles
from tests.conftest import TEST_SECRETS

pytestmark = pytest.mark.db
BRT = ZoneInfo("America/Sao_Paulo")
HEADERS = {"asaas-access-token": TEST_SECRETS["asaas_webhook_token"]}


@pytest.fixture
async def api(settings, pool):
    app = create_app(settings, pool=pool)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client


@pytest.fixture
async def subscribed(pool):
    """A profile whose first checkout saved subscription sub_1 on plan basic."""
    async with pool.connection() as conn:
        profile = await db_profiles.insert_profile(
            conn,
            auth_user_id=uuid.uuid4(),
            name="Maria",
            email="maria@example.com",
            phone="+5511987654321",
            cpf_cnpj="52998224725",
        )
        attempt = await db_profiles.start_checkout_attempt(conn, profile.profile_id, "basic")
        await db_profiles.set_subscription(conn, profile.profile_id, attempt.workflow_id, "sub_1")
    return profile.profile_id


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


async def _period(pool, profile_id):
    async with pool.connection() as conn:
        profile = await db_profiles.get_profile(conn, profile_id)
    return profile.current_period_start, profile.current_period_end, profile.plan_id


async def test_bad_token_is_refused_and_nothing_recorded(api, pool, subscribed) -> None:
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


async def test_confirmed_payment_sets_period_and_plan(api, pool, subscribed) -> None:
    """PAYMENT_CONFIRMED sets the period from the due date for one cycle, and the plan."""
    response = await api.post(
        "/webhooks/asaas", json=_event("evt_1", "PAYMENT_CONFIRMED", "2026-01-31"), headers=HEADERS
    )
    assert response.status_code == 200 and response.json() == {"status": "recorded"}
    start, end, plan = await _period(pool, subscribed)
    assert start == datetime(2026, 1, 31, tzinfo=BRT)
    assert end == datetime(2026, 2, 28, tzinfo=BRT)
    assert plan == "basic"


async def test_renewal_moves_forward_never_back(api, pool, subscribed) -> None:
    """PAYMENT_RECEIVED for the next due date renews; a late event for an older one is ignored."""
    for event_id, due in (
        ("evt_1", "2026-11-23"),
        ("evt_2", "2026-12-23"),
        ("evt_0", "2026-10-23"),
    ):
        response = await api.post(
            "/webhooks/asaas", json=_event(event_id, "PAYMENT_RECEIVED", due), headers=HEADERS
        )
        assert response.status_code == 200
    start, end, _ = await _period(pool, subscribed)
    assert (start, end) == (datetime(2026, 12, 23, tzinfo=BRT), datetime(2027, 1, 23, tzinfo=BRT))


async def test_redelivered_event_is_recorded_once(api, pool, subscribed) -> None:
    """The same event id twice: both answered 200, one row, the second marked duplicate."""
    body = _event("evt_1", "PAYMENT_CONFIRMED", "2026-11-23")
    first = await api.post("/webhooks/asaas", json=body, headers=HEADERS)
    second = await api.post("/webhooks/asaas", json=body, headers=HEADERS)
    assert [first.json()["status"], second.json()["status"]] == ["recorded", "duplicate"]
    async with pool.connection() as conn:
        rows = await (
            await conn.execute("SELECT event_id, profile_id FROM asaas_events")
        ).fetchall()
    assert rows == [("evt_1", subscribed)]


async def test_overdue_and_refund_are_recorded_without_touching_the_period(
    api, pool, subscribed
) -> None:
    """PAYMENT_OVERDUE and PAYMENT_REFUNDED are recorded; the period stays as it was."""
    for event_id, event in (("evt_1", "PAYMENT_OVERDUE"), ("evt_2", "PAYMENT_REFUNDED")):
        response = await api.post(
            "/webhooks/asaas", json=_event(event_id, event, "2026-11-23"), headers=HEADERS
        )
        assert response.status_code == 200
    assert await _period(pool, subscribed) == (None, None, None)
    async with pool.connection() as conn:
        events = await (await conn.execute("SELECT event FROM asaas_events ORDER BY 1")).fetchall()
    assert events == [("PAYMENT_OVERDUE",), ("PAYMENT_REFUNDED",)]


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
