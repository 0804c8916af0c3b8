"""AppMax Apphooks are handed off once per (event, order id), and only once durably."""

from __future__ import annotations

import pytest

from tests.conftest import TEST_SECRETS
from tests.purchases.test_gateway_auth import _app
from tests.support import app_client, cut_off, free_port, silent_server

pytestmark = [pytest.mark.db, pytest.mark.temporal]

TOKEN = {"token": TEST_SECRETS["appmax_webhook_token"]}


def apphook(event: str, order_id: str) -> dict:
    customer = {"firstname": "Bia", "email": "bia@example.com"}
    return {
        "event": event,
        "event_type": "",
        "data": {"id": order_id, "total": 49.9, "customer": customer},
    }


async def test_failed_hand_off_is_forgotten_and_a_re_send_is_a_duplicate(
    database_url, pool, temporal_client, task_queue
) -> None:
    """Temporal down: 503 and the pair is not kept; AppMax's re-send is accepted; a further
    re-send of the same (event, order) is acknowledged as a duplicate, another event is not."""
    down = _app(database_url, pool, None, task_queue, temporal_address=f"127.0.0.1:{free_port()}")
    async with app_client(down) as client:
        response = await client.post(
            "/webhooks/appmax", params=TOKEN, json=apphook("OrderPaid", "77")
        )
    assert response.status_code == 503, response.text
    async with app_client(_app(database_url, pool, temporal_client, task_queue)) as client:
        answers = [
            (await client.post("/webhooks/appmax", params=TOKEN, json=apphook(event, "77"))).json()
            for event in ("OrderPaid", "OrderPaid", "OrderRefund")
        ]
    assert [a["status"] for a in answers] == ["accepted", "duplicate", "accepted"]
    assert {a["order_id"] for a in answers} == {"purchase:appmax:77"}
    await temporal_client.get_workflow_handle("purchase:appmax:77").terminate()


async def test_an_apphook_cut_off_mid_hand_off_is_not_kept(
    database_url, pool, temporal_client, task_queue
) -> None:
    """The request dies while the hand-off waits on Temporal (a crash, a cancelled request): the
    pair is not kept, so AppMax's re-send is delivered instead of answered as a duplicate."""

    async with silent_server() as port:
        hanging = _app(database_url, pool, None, task_queue, temporal_address=f"127.0.0.1:{port}")
        async with app_client(hanging) as client:
            await cut_off(
                client.post("/webhooks/appmax", params=TOKEN, json=apphook("OrderPaid", "78"))
            )
    async with app_client(_app(database_url, pool, temporal_client, task_queue)) as client:
        answer = await client.post(
            "/webhooks/appmax", params=TOKEN, json=apphook("OrderPaid", "78")
        )
    assert answer.json()["status"] == "accepted", answer.text
    await temporal_client.get_workflow_handle("purchase:appmax:78").terminate()
