"""Operators end orders that will never succeed, every action is on the record with who and why,
and a stuck order is findable by how long its stage has lasted."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import Result
from temporalio.api.sdk.v1 import WorkflowMetadata

from contracts.search_attributes import STAGE_SINCE
from db import operations
from tests.conftest import TEST_SECRETS
from tests.purchases.stack import entrega, purchase_stack, stack_settings

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox]

ADMIN = {"Authorization": f"Bearer {TEST_SECRETS['admin_token']}"}
ANA = {"Authorization": "Bearer token-da-ana-123456"}


@pytest.fixture
async def stack(database_url, pool, temporal_client, sandbox, task_queue):
    settings = stack_settings(
        database_url,
        sandbox.url,
        temporal_client,
        task_queue,
        provisioning_retry_schedule="1s",
        admin_tokens="ana:token-da-ana-123456,bruno:token-do-bruno-654321",
    )
    async with purchase_stack(settings, pool, temporal_client, sandbox) as stack:
        yield stack


async def test_parked_order_is_stuck_then_cancelled_on_the_record(stack) -> None:
    """A failed_permanent order has EntregaStageSince, is listed as stuck, is cancelled by a named
    operator (recorded with the reason), and a second cancel of the finished order is a 409."""
    await stack.sandbox.fault("lovable", "create_user", status=503)
    payment_id = await stack.mp_payment()
    await stack.mp_notify(payment_id)
    order_id = f"purchase:mercadopago:{payment_id}"
    await stack.wait_stage(order_id, "failed_permanent")

    handle = stack.client.get_workflow_handle(order_id)
    described = await handle.describe()
    assert described.typed_search_attributes.get(STAGE_SINCE) is not None
    # What the Web UI shows as the run's current details: the stage and its last error.
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    assert metadata.current_details.startswith("**failed_permanent** — último erro:")
    assert "503" in metadata.current_details or "Transient" in metadata.current_details
    async with stack.pool.connection() as conn:
        stuck = await operations.stuck_orders(conn, timedelta(0))
        not_yet = await operations.stuck_orders(conn, timedelta(hours=1))
    assert [o.order_id for o in stuck] == [order_id] and stuck[0].stage == "failed_permanent"
    assert not_yet == []

    no_reason = await stack.gateway.post(
        f"/api/v1/admin/orders/{order_id}/cancel", json={}, headers=ANA
    )
    assert no_reason.status_code == 422
    cancelled = await stack.gateway.post(
        f"/api/v1/admin/orders/{payment_id}/cancel",
        json={"reason": "cliente pediu estorno por fora"},
        headers=ANA,
    )
    assert cancelled.status_code == 202, cancelled.text
    await stack.wait_stage(order_id, "cancelled")

    shown = (await stack.gateway.get(f"/api/v1/admin/orders/{order_id}", headers=ADMIN)).json()
    assert shown["order"]["last_error"] == "cancelado por ana: cliente pediu estorno por fora"
    assert [
        (a["action"], a["actor"], a["via"], a["reason"]) for a in shown["operator_actions"]
    ] == [("cancel", "ana", "api", "cliente pediu estorno por fora")]
    again = await stack.gateway.post(
        f"/api/v1/admin/orders/{order_id}/cancel", json={"reason": "de novo"}, headers=ADMIN
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "order_finished"


async def test_retry_is_recorded_with_the_operator_and_reason(stack) -> None:
    """A retry through the API names the operator's credential; ADMIN_TOKEN is `admin`."""
    await stack.sandbox.fault("lovable", "create_user", status=503, times=4)
    payment_id = await stack.mp_payment()
    await stack.mp_notify(payment_id)
    order_id = f"purchase:mercadopago:{payment_id}"
    await stack.wait_stage(order_id, "failed_permanent")
    await stack.sandbox.clear_faults()
    retried = await stack.gateway.post(
        f"/api/v1/admin/orders/{order_id}/retry", json={"reason": "Lovable voltou"}, headers=ADMIN
    )
    assert retried.status_code == 202
    await stack.wait_stage(order_id, "completed")
    async with stack.pool.connection() as conn:
        actions = await operations.actions_on(conn, order_id)
    assert [(a.action, a.actor, a.reason) for a in actions] == [
        ("retry", "admin", "Lovable voltou")
    ]
    completed = await stack.gateway.post(
        f"/api/v1/admin/orders/{order_id}/cancel", json={"reason": "engano"}, headers=ANA
    )
    assert completed.status_code == 409
    assert completed.json()["error"]["details"] == {"stage": "completed"}
    wrong = await stack.gateway.post(
        f"/api/v1/admin/orders/{order_id}/cancel",
        json={"reason": "x"},
        headers={"Authorization": "Bearer ana"},
    )
    assert wrong.status_code == 401


async def _cli(stack, *args: str, operator: str = "carla") -> Result:
    return await entrega(stack.settings, *args, ENTREGA_OPERATOR=operator)


async def test_cli_lists_stuck_orders_and_cancels_on_the_record(stack) -> None:
    """`orders list --stuck` finds the parked order, `orders cancel --reason` ends it, and
    `orders show` names the CLI's operator and the reason."""
    await stack.sandbox.fault("lovable", "create_user", status=503)
    payment_id = await stack.mp_payment()
    await stack.mp_notify(payment_id)
    order_id = f"purchase:mercadopago:{payment_id}"
    await stack.wait_stage(order_id, "failed_permanent")

    listed = await _cli(stack, "orders", "list", "--stuck", "0s", "--json")
    assert listed.exit_code == 0, listed.output
    assert [o["order_id"] for o in json.loads(listed.output)] == [order_id]
    later = await _cli(stack, "orders", "list", "--stuck", "2h", "--json")
    assert json.loads(later.output) == []
    bad = await _cli(stack, "orders", "list", "--stuck", "soon")
    assert bad.exit_code == 2

    cancelled = await _cli(stack, "orders", "cancel", payment_id, "--reason", "pedido duplicado")
    assert cancelled.exit_code == 0, cancelled.output
    await stack.wait_stage(order_id, "cancelled")
    shown = await _cli(stack, "orders", "show", order_id, "--json")
    actions = json.loads(shown.output)["operator_actions"]
    assert [(a["action"], a["actor"], a["via"], a["reason"]) for a in actions] == [
        ("cancel", "carla", "cli", "pedido duplicado")
    ]
    refused = await _cli(stack, "orders", "cancel", order_id, "--reason", "de novo")
    assert refused.exit_code == 1
