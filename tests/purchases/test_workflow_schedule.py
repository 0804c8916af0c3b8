"""The workflow's decisions on the time-skipping server: stages, retry schedule, signals."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from temporalio.client import Client

from contracts.purchases import (
    CREATE_USER,
    DEACTIVATE_USER,
    FETCH_PAYMENT,
    SEND_CONFIRMATION,
    SEND_CREDENTIALS,
    Payment,
    PaymentNotice,
    PurchaseConfig,
)
from tests.purchases.fakes import FAST, FakeWorld, approved, status, wait_for_stage
from workflows.purchase_client import hand_off

pytestmark = pytest.mark.timeskip

CONFIG = PurchaseConfig(
    retry_schedule=[timedelta(minutes=5), timedelta(minutes=10), timedelta(minutes=20)],
    payment_deadline=timedelta(days=3),
    revocation_window=timedelta(days=180),
    step_attempts=2,
    step_initial_interval=FAST,
)


async def start(client: Client, task_queue: str, world: FakeWorld, payment: Payment):
    payment_id = uuid.uuid4().hex[:10]
    world.payments[payment_id] = payment
    return await hand_off(
        client,
        provider="mercadopago",
        provider_order_id=payment_id,
        notice=PaymentNotice(action="payment.created"),
        config=CONFIG,
        task_queue=task_queue,
    )


async def test_approved_payment_is_provisioned_once(client, task_queue, world) -> None:
    """An approved payment goes queued → creating_user → sending_credentials → completed."""
    handle = await start(client, task_queue, world, approved())
    await wait_for_stage(handle, "completed")
    assert world.stages == ["queued", "creating_user", "sending_credentials", "completed"]
    assert len(world.users) == 1
    assert sorted(kind for kind, _ in world.emails) == ["credentials", "purchase_confirmation"]


async def test_schedule_exhausted_parks_then_retry_signal_completes(
    client, task_queue, world, time_skipping_env
) -> None:
    """Failing user creation waits 5m, 10m, 20m, parks at failed_permanent; a retry completes."""
    world.fail(CREATE_USER)
    handle = await start(client, task_queue, world, approved())
    for delay in (5, 10, 20):
        waiting = await wait_for_stage(handle, "failed_at_user")
        assert waiting.next_retry_at is not None and waiting.last_error
        await time_skipping_env.sleep(timedelta(minutes=delay))
        if delay != 20:
            await wait_for_stage(handle, "creating_user")
    parked = await wait_for_stage(handle, "failed_permanent")
    assert parked.attempts == 4
    assert world.calls[CREATE_USER] == 4 * CONFIG.step_attempts
    world.heal(CREATE_USER)
    await handle.signal("retry")
    await wait_for_stage(handle, "completed")
    assert world.stages.count("failed_at_user") == 3
    assert len(world.users) == 1


async def test_retry_signal_cuts_the_timer_short(client, task_queue, world) -> None:
    """A retry signal during a 5-minute wait retries at once (time is not skipped here)."""
    world.fail(CREATE_USER, times=CONFIG.step_attempts)
    handle = await start(client, task_queue, world, approved())
    await wait_for_stage(handle, "failed_at_user")
    await handle.signal("retry")
    done = await wait_for_stage(handle, "completed")
    assert done.next_retry_at is None
    assert [h.stage for h in done.history][-1] == "completed"


async def test_permanent_error_skips_the_schedule(client, task_queue, world) -> None:
    """A permanent error goes straight to failed_permanent with its reason, no timers."""
    world.fail(CREATE_USER, permanent=True)
    handle = await start(client, task_queue, world, approved())
    parked = await wait_for_stage(handle, "failed_permanent")
    assert "failed on purpose" in (parked.last_error or "")
    assert "failed_at_user" not in world.stages
    assert world.calls[CREATE_USER] == 1


async def test_email_failure_never_creates_a_second_user(
    client, task_queue, world, time_skipping_env
) -> None:
    """Credentials failing parks at failed_at_email; the retry sends them with the same user."""
    world.fail(SEND_CREDENTIALS, times=CONFIG.step_attempts)
    handle = await start(client, task_queue, world, approved())
    await wait_for_stage(handle, "failed_at_email")
    await time_skipping_env.sleep(timedelta(minutes=5))
    await wait_for_stage(handle, "completed")
    assert world.calls[CREATE_USER] == 1
    assert [kind for kind, _ in world.emails].count("credentials") == 1


async def test_confirmation_failing_for_good_does_not_block(client, task_queue, world) -> None:
    """A confirmation e-mail that can never be sent is logged, and provisioning completes."""
    world.fail(SEND_CONFIRMATION, permanent=True)
    handle = await start(client, task_queue, world, approved())
    await wait_for_stage(handle, "completed")
    assert ("credentials", handle.id) in world.emails
    assert [e.event for e in world.journal] == ["confirmation_abandoned"]


async def test_pending_then_approved(client, task_queue, world) -> None:
    """A pending payment waits in awaiting_payment until a notice shows it approved."""
    handle = await start(
        client, task_queue, world, Payment(state="pending", provider_status="in_process")
    )
    while "awaiting_payment" not in world.stages:
        await asyncio.sleep(0.05)
    payment_id = handle.id.rsplit(":", 1)[1]
    world.payments[payment_id] = approved()
    await handle.signal("payment_updated", PaymentNotice(action="payment.updated"))
    await wait_for_stage(handle, "completed")
    assert world.stages[0] == "awaiting_payment"


async def test_unpaid_past_the_deadline_is_cancelled(client, task_queue, world) -> None:
    """A payment still pending when the deadline passes cancels the order."""
    handle = await start(
        client, task_queue, world, Payment(state="pending", provider_status="pending")
    )
    result = await handle.result()
    assert result.stage == "cancelled"
    assert not world.users


async def test_rejected_payment_is_cancelled(client, task_queue, world) -> None:
    """A rejected payment ends as cancelled without creating anything."""
    handle = await start(
        client, task_queue, world, Payment(state="rejected", provider_status="rejected")
    )
    assert (await handle.result()).stage == "cancelled"
    assert not world.users and not world.emails


async def test_refund_after_completion_revokes(client, task_queue, world) -> None:
    """A refund notice after completion deactivates the user and ends in revoked."""
    handle = await start(client, task_queue, world, approved())
    await wait_for_stage(handle, "completed")
    payment_id = handle.id.rsplit(":", 1)[1]
    world.payments[payment_id] = Payment(state="refunded", provider_status="refunded")
    await handle.signal("payment_updated", PaymentNotice(action="payment.updated"))
    assert (await handle.result()).stage == "revoked"
    assert world.deactivated == list(world.users.values())
    assert (await status(handle)).stage == "revoked"


async def test_permanent_fetch_error_parks_until_retry(client, task_queue, world) -> None:
    """A payment MP refuses to show (e.g. bad token) parks at failed_permanent; retry resumes."""
    world.fail(FETCH_PAYMENT, permanent=True)
    handle = await start(client, task_queue, world, approved())
    parked = await wait_for_stage(handle, "failed_permanent")
    assert "failed on purpose" in (parked.last_error or "")
    world.heal(FETCH_PAYMENT)
    await handle.signal("retry")
    await wait_for_stage(handle, "completed")


async def test_refused_revocation_parks_until_retry(client, task_queue, world) -> None:
    """Lovable refusing the deactivation parks at failed_permanent; a retry then revokes."""
    handle = await start(client, task_queue, world, approved())
    await wait_for_stage(handle, "completed")
    world.fail(DEACTIVATE_USER, permanent=True)
    world.payments[handle.id.rsplit(":", 1)[1]] = Payment(
        state="charged_back", provider_status="charged_back"
    )
    await handle.signal("payment_updated", PaymentNotice(action="payment.updated"))
    await wait_for_stage(handle, "failed_permanent")
    world.heal(DEACTIVATE_USER)
    await handle.signal("retry")
    assert (await handle.result()).stage == "revoked"
    assert world.deactivated == list(world.users.values())
