"""The admin orders API mirrors the CLI: list by stage, show with the trail, retry."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.conftest import TEST_SECRETS
from tests.purchases.stack import entrega, purchase_stack, stack_settings

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox]

ADMIN = {"Authorization": f"Bearer {TEST_SECRETS['admin_token']}"}


@pytest.fixture
async def stack(database_url, pool, temporal_client, sandbox, task_queue):
    settings = stack_settings(
        database_url, sandbox.url, temporal_client, task_queue, provisioning_retry_schedule="1s"
    )
    async with purchase_stack(settings, pool, temporal_client, sandbox) as stack:
        yield stack


async def test_parked_order_is_listed_shown_and_resynchronised(stack) -> None:
    """A failed_permanent order is listed by stage, shown with its trail, and retried to the end."""
    await stack.sandbox.fault("lovable", "create_user", status=503)
    payment_id = await stack.mp_payment()
    await stack.mp_notify(payment_id)
    order_id = f"purchase:mercadopago:{payment_id}"
    await stack.wait_stage(order_id, "failed_permanent")
    # What the Temporal Web UI filter `EntregaStage="failed_permanent"` lists.
    query = f'EntregaStage="failed_permanent" AND WorkflowId="{order_id}"'
    for _ in range(50):
        if [w.id async for w in stack.client.list_workflows(query)] == [order_id]:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the visibility store does not list the parked order")

    listed = await stack.gateway.get(
        "/api/v1/admin/orders", params={"stage": "failed_permanent"}, headers=ADMIN
    )
    assert [o["order_id"] for o in listed.json()["orders"]] == [order_id]
    assert "encrypted_password" not in listed.json()["orders"][0]

    shown = await stack.gateway.get(f"/api/v1/admin/orders/{payment_id}", headers=ADMIN)
    body = shown.json()
    assert body["workflow"]["stage"] == "failed_permanent"
    assert any(e["event"] == "attempt_failed" for e in body["integration_logs"])

    await stack.sandbox.clear_faults()
    retried = await stack.gateway.post(f"/api/v1/admin/orders/{order_id}/retry", headers=ADMIN)
    assert retried.status_code == 202
    await stack.wait_stage(order_id, "completed")


async def test_admin_routes_need_the_admin_token(stack) -> None:
    """Without the admin token every admin order route answers 401."""
    for method, path in (
        ("GET", "/api/v1/admin/orders"),
        ("GET", "/api/v1/admin/orders/x"),
        ("POST", "/api/v1/admin/orders/x/retry"),
    ):
        response = await stack.gateway.request(method, path)
        assert response.status_code == 401


async def test_unknown_order_is_404(stack) -> None:
    """An order nobody knows answers 404 on show and retry."""
    assert (await stack.gateway.get("/api/v1/admin/orders/nope", headers=ADMIN)).status_code == 404
    response = await stack.gateway.post("/api/v1/admin/orders/nope/retry", headers=ADMIN)
    assert response.status_code == 404


async def test_cli_lists_and_shows_orders(stack) -> None:
    """`entrega orders list --stage completed --json` and `orders show PAYMENT_ID --json`."""
    payment_id = await stack.mp_payment()
    await stack.mp_notify(payment_id)
    order_id = f"purchase:mercadopago:{payment_id}"
    await stack.wait_stage(order_id, "completed")

    async def cli(*args: str) -> object:
        result = await entrega(stack.settings, *args)
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    listed = await cli("orders", "list", "--stage", "completed", "--json")
    assert [o["order_id"] for o in listed] == [order_id]
    shown = await cli("orders", "show", payment_id, "--json")
    assert shown["order"]["stage"] == shown["workflow"]["stage"] == "completed"
    assert {e["email_type"] for e in shown["email_logs"]} >= {"credentials"}
    assert "encrypted_password" not in shown["order"]
