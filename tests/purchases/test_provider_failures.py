"""Provider outages end to end: stages show the failure, retries recover, nothing doubles."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

import pytest

from activities.credentials import cipher
from db import orders
from tests.conftest import TEST_SECRETS
from tests.purchases.stack import entrega, purchase_stack, stack_settings

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox]


@pytest.fixture
def make_stack(database_url, pool, temporal_client, sandbox, task_queue):
    @asynccontextmanager
    async def make(**overrides):
        settings = stack_settings(
            database_url, sandbox.url, temporal_client, task_queue, **overrides
        )
        async with purchase_stack(settings, pool, temporal_client, sandbox) as stack:
            yield stack

    return make


async def _one_order(stack) -> str:
    payment_id = await stack.mp_payment()
    assert (await stack.mp_notify(payment_id))["status_code"] == 200
    return f"purchase:mercadopago:{payment_id}"


async def test_lovable_outage_shows_failed_at_user_then_recovers(make_stack) -> None:
    """Lovable down: failed_at_user in table, query and search attribute, and the confirmation
    e-mail (with its payment method) still goes out and is logged; back up: one user."""
    async with make_stack(provisioning_retry_schedule="3s,3s") as stack:
        await stack.sandbox.fault("lovable", "create_user", status=503)
        order_id = await _one_order(stack)
        failed = await stack.wait_stage(order_id, "failed_at_user")
        assert failed.last_error and "503" in failed.last_error
        assert failed.next_retry_at is not None
        # The order-received e-mail never waits for Lovable.
        for _ in range(50):
            async with stack.pool.connection() as conn:
                logged = await orders.order_emails(conn, order_id)
            if logged:
                break
            await asyncio.sleep(0.1)
        [confirmation] = (await stack.sandbox.state())["emails"]
        assert confirmation["tags"]["email_type"] == "purchase_confirmation"
        assert confirmation["to"] in ("ana@example.com", ["ana@example.com"])
        assert "Forma de pagamento: Pix" in confirmation["text"]
        assert [(e.email_type, e.status, e.idempotency_key) for e in logged] == [
            ("purchase_confirmation", "sent", f"{order_id}:purchase_confirmation")
        ]
        assert logged[0].provider_message_id == confirmation["id"]
        await stack.sandbox.clear_faults()
        await stack.wait_stage(order_id, "completed")
        assert len((await stack.sandbox.state())["lovable_users"]) == 1
        async with stack.pool.connection() as conn:
            events = [(e.event, e.stage) for e in await orders.order_logs(conn, order_id)]
        assert ("attempt_failed", "creating_user") in events
        assert ("stage_changed", "failed_at_user") in events


async def test_resend_outage_retries_credentials_with_the_same_user(make_stack) -> None:
    """Resend down: failed_at_email; once back, one user, one e-mail of each kind."""
    async with make_stack(provisioning_retry_schedule="3s,3s") as stack:
        await stack.sandbox.fault("resend", "send_batch", status=500)
        order_id = await _one_order(stack)
        waiting = await stack.wait_stage(order_id, "failed_at_email")
        # Meanwhile the password exists only as a Fernet token: not in history, not in the logs.
        assert waiting.encrypted_password is not None
        password = cipher(TEST_SECRETS["credentials_key"]).decrypt(waiting.encrypted_password)
        history = await stack.client.get_workflow_handle(order_id).fetch_history()
        assert password.decode() not in history.to_json()
        async with stack.pool.connection() as conn:
            trail = [e.model_dump_json() for e in await orders.order_logs(conn, order_id)]
        assert not any(password.decode() in line for line in trail)
        await stack.sandbox.clear_faults()
        await stack.wait_stage(order_id, "completed")
        state = await stack.sandbox.state()
        assert len(state["lovable_users"]) == 1
        for _ in range(50):  # the confirmation retries on its own schedule
            kinds = sorted(e["tags"]["email_type"] for e in (await stack.sandbox.state())["emails"])
            if len(kinds) == 2:
                break
            await asyncio.sleep(0.1)
        assert kinds == ["credentials", "purchase_confirmation"]
        async with stack.pool.connection() as conn:
            emails = await orders.order_emails(conn, order_id)
        assert {e.status for e in emails if e.email_type == "credentials"} == {"failed", "sent"}
        assert (await stack.login("ana@example.com")).status_code == 200
        assert (await stack.order(order_id)).encrypted_password is None


async def test_exhausted_schedule_parks_until_cli_retry(make_stack) -> None:
    """After the schedule the order is failed_permanent; `entrega orders retry` completes it."""
    async with make_stack(provisioning_retry_schedule="1s,1s") as stack:
        await stack.sandbox.fault("lovable", "create_user", status=503)
        order_id = await _one_order(stack)
        parked = await stack.wait_stage(order_id, "failed_permanent")
        assert parked.attempts == 3
        await stack.sandbox.clear_faults()
        result = await entrega(stack.settings, "orders", "retry", "--stage", "failed_permanent")
        assert result.exit_code == 0, result.output
        assert f"{order_id}: retry requested" in result.output
        await stack.wait_stage(order_id, "completed")
        assert len((await stack.sandbox.state())["lovable_users"]) == 1


async def test_confirmation_failing_for_good_still_provisions(make_stack) -> None:
    """A confirmation Resend refuses for good is abandoned; the customer still gets access."""
    async with make_stack() as stack:
        # The confirmation is the first e-mail sent: it goes out beside the user's creation.
        await stack.sandbox.fault("resend", "send_batch", status=422, times=1)
        order_id = await _one_order(stack)
        await stack.wait_stage(order_id, "completed")
        kinds = [e["tags"]["email_type"] for e in (await stack.sandbox.state())["emails"]]
        assert kinds == ["credentials"]
        async with stack.pool.connection() as conn:
            events = [e.event for e in await orders.order_logs(conn, order_id)]
        for _ in range(50):
            if "confirmation_abandoned" in events:
                break
            await asyncio.sleep(0.1)
            async with stack.pool.connection() as conn:
                events = [e.event for e in await orders.order_logs(conn, order_id)]
        assert "confirmation_abandoned" in events


async def test_ten_duplicate_notifications_make_one_of_everything(make_stack) -> None:
    """Ten concurrent notifications of one payment: one workflow, one user, one e-mail of each."""
    async with make_stack() as stack:
        payment_id = await stack.mp_payment()
        deliveries = await asyncio.gather(*(stack.mp_notify(payment_id) for _ in range(10)))
        assert [d["status_code"] for d in deliveries] == [200] * 10
        order_id = f"purchase:mercadopago:{payment_id}"
        await stack.wait_stage(order_id, "completed")
        runs = [w async for w in stack.client.list_workflows(f'WorkflowId = "{order_id}"')]
        assert len(runs) == 1
        state = await stack.sandbox.state()
        assert len(state["lovable_users"]) == 1
        for _ in range(50):
            kinds = sorted(e["tags"]["email_type"] for e in (await stack.sandbox.state())["emails"])
            if len(kinds) >= 2:
                break
            await asyncio.sleep(0.1)
        assert kinds == ["credentials", "purchase_confirmation"]
