"""The Mercado Pago gateway trusts nothing unsigned, and acknowledges only durable hand-offs."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.service import RPCError, RPCStatusCode

from api.app import create_app
from providers.mercadopago_signature import sign
from tests.conftest import TEST_SECRETS, make_settings
from tests.support import app_client, cut_off, free_port, silent_server

pytestmark = [pytest.mark.db, pytest.mark.temporal]

SECRET = TEST_SECRETS["mercadopago_webhook_secret"]


def notification(
    payment_id: str, *, secret: str = SECRET, ts: float | None = None, signed_id: str | None = None
) -> dict:
    """The pieces of an MP notification for `payment_id`, signed as MP would."""
    request_id = str(uuid.uuid4())
    stamp = int((ts if ts is not None else time.time()) * 1000)
    return {
        "params": {"data.id": payment_id, "type": "payment"},
        "headers": {
            "x-signature": sign(
                secret, data_id=signed_id or payment_id, request_id=request_id, ts=stamp
            ),
            "x-request-id": request_id,
            "content-type": "application/json",
        },
        "content": json.dumps(
            {"type": "payment", "action": "payment.created", "data": {"id": payment_id}}
        ),
    }


def _app(database_url, pool, temporal_client, task_queue, **over):
    settings = make_settings(database_url=database_url, temporal_task_queue=task_queue, **over)
    return create_app(settings, pool=pool, temporal=temporal_client)


@pytest.fixture
async def gateway(database_url, pool, temporal_client, task_queue):
    async with app_client(_app(database_url, pool, temporal_client, task_queue)) as client:
        yield client


async def _started(temporal_client, payment_id: str) -> bool:
    try:
        await temporal_client.get_workflow_handle(f"purchase:mercadopago:{payment_id}").describe()
    except RPCError as exc:
        assert exc.status == RPCStatusCode.NOT_FOUND
        return False
    return True


async def test_signed_notification_starts_the_workflow(gateway, temporal_client) -> None:
    """A correctly signed payment notification answers 200 once the workflow exists."""
    response = await gateway.post("/webhooks/mercadopago", **notification("1001"))
    assert response.status_code == 200, response.text
    assert response.json()["order_id"] == "purchase:mercadopago:1001"
    assert await _started(temporal_client, "1001")
    await temporal_client.get_workflow_handle("purchase:mercadopago:1001").terminate()


@pytest.mark.parametrize(
    ("case", "tamper"),
    [
        ("bad", lambda n: n | {"headers": n["headers"] | {"x-signature": "ts=1,v1=00"}}),
        ("wrong secret", lambda n: notification("2002", secret="not-the-secret")),
        ("missing", lambda n: n | {"headers": {"x-request-id": n["headers"]["x-request-id"]}}),
        ("stale", lambda n: notification("2002", ts=time.time() - 3600)),
        ("other payment", lambda n: notification("2002", signed_id="9999")),
    ],
)
async def test_bad_signatures_are_refused(gateway, temporal_client, case, tamper) -> None:
    """Bad, foreign, missing, stale or mismatched signatures answer 401 and start nothing."""
    response = await gateway.post("/webhooks/mercadopago", **tamper(notification("2002")))
    assert response.status_code == 401, (case, response.text)
    assert response.json()["error"]["code"] == "invalid_signature"
    assert not await _started(temporal_client, "2002")


async def test_replayed_signature_is_refused(gateway, temporal_client) -> None:
    """The same signed notification sent twice: the copy answers 401 and signals nothing."""
    signed = notification("3003")
    assert (await gateway.post("/webhooks/mercadopago", **signed)).status_code == 200
    replay = await gateway.post("/webhooks/mercadopago", **signed)
    assert replay.status_code == 401
    handle = temporal_client.get_workflow_handle("purchase:mercadopago:3003")
    signals = [
        e
        async for e in handle.fetch_history_events()
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    ]
    assert len(signals) == 1
    await handle.terminate()


async def test_other_topics_are_acknowledged_and_ignored(gateway, temporal_client) -> None:
    """A signed notification of another topic answers 200 and starts nothing."""
    signed = notification("4004")
    signed["params"] = {"data.id": "4004", "type": "merchant_order"}
    response = await gateway.post("/webhooks/mercadopago", **signed)
    assert response.status_code == 200 and response.json() == {"status": "ignored"}
    assert not await _started(temporal_client, "4004")


async def test_malformed_body_is_400(gateway) -> None:
    """A signed notification whose body is not JSON answers 400."""
    signed = notification("5005") | {"content": "{not json"}
    response = await gateway.post("/webhooks/mercadopago", **signed)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


async def test_temporal_down_answers_503_and_the_resend_is_accepted(
    database_url, pool, temporal_client, task_queue
) -> None:
    """Without Temporal the gateway answers 503; the same notification later gets its 200."""
    down = _app(database_url, pool, None, task_queue, temporal_address=f"127.0.0.1:{free_port()}")
    signed = notification("6006")
    async with app_client(down) as client:
        response = await client.post("/webhooks/mercadopago", **signed)
    assert response.status_code == 503, response.text
    assert response.json()["error"]["details"] is None  # no transport internals leak out
    async with app_client(_app(database_url, pool, temporal_client, task_queue)) as client:
        assert (await client.post("/webhooks/mercadopago", **signed)).status_code == 200
    await temporal_client.get_workflow_handle("purchase:mercadopago:6006").terminate()


async def test_a_notification_cut_off_mid_hand_off_leaves_its_signature_unused(
    database_url, pool, temporal_client, task_queue
) -> None:
    """The request dies while the hand-off waits on Temporal: the signature is not spent, so the
    same signed notification sent again is delivered, not refused as a replay."""

    signed = notification("5005")
    async with silent_server() as port:
        hanging = _app(database_url, pool, None, task_queue, temporal_address=f"127.0.0.1:{port}")
        async with app_client(hanging) as client:
            await cut_off(client.post("/webhooks/mercadopago", **signed))
    async with app_client(_app(database_url, pool, temporal_client, task_queue)) as client:
        answer = await client.post("/webhooks/mercadopago", **signed)
    assert answer.status_code == 200, answer.text
    await temporal_client.get_workflow_handle("purchase:mercadopago:5005").terminate()
