"""A Mercado Pago or database outage shows as a pending activity with its last failure and the
order's `last_error`, and six hours of it add fewer than 100 history events."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import timedelta

import pytest
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities.purchases import PurchaseActivities
from contracts.purchases import (
    FETCH_PAYMENT,
    MATCH_PRODUCT,
    SET_STAGE,
    FetchPayment,
    OrderState,
    PaymentNotice,
    PurchaseConfig,
    StageChange,
)
from db import orders
from providers.clients import open_provider_clients
from tests.purchases.fakes import FAST, FakeWorld, approved, wait_for_stage
from workflows.purchase import PurchaseWorkflow
from workflows.purchase_client import hand_off

CONFIG = PurchaseConfig(step_attempts=2, step_initial_interval=FAST)


class World(FakeWorld):
    """The fake activities, with the stage write failing on demand too (the database down)."""

    @activity.defn(name=SET_STAGE)
    async def set_stage(self, change: StageChange) -> OrderState:
        self._maybe_fail(SET_STAGE)
        return await super().set_stage(change)


async def _pending_failure(handle, activity: str) -> str:
    """The last failure of the pending `activity`, as the Web UI shows it ('' if none yet)."""
    for _ in range(100):
        pending = [
            p
            for p in (await handle.describe()).raw_description.pending_activities
            if p.activity_type.name == activity
        ]
        if pending and pending[0].last_failure.message:
            return str(pending[0].last_failure.message)
        await asyncio.sleep(0.05)
    return ""


# The failing step, and the local activity that meets it first: on the lean path (patch
# purchases-lean-path) the first stage write is the match's `queued`.
@pytest.mark.timeskip
@pytest.mark.parametrize(
    ("failing", "activity"),
    [(FETCH_PAYMENT, FETCH_PAYMENT), (SET_STAGE, MATCH_PRODUCT)],
    ids=[FETCH_PAYMENT, SET_STAGE],
)
async def test_six_hour_outage_is_visible_and_small(
    plain_time_skipping_env: WorkflowEnvironment, task_queue: str, failing: str, activity: str
) -> None:
    """The failing local activity gives way to a regular one within seconds: a pending activity
    with its last failure during the outage, under 100 events after six hours, completed after."""
    world = World()
    payment_id = uuid.uuid4().hex[:10]
    world.payments[payment_id] = approved()
    world.fail(failing)
    client = plain_time_skipping_env.client
    async with Worker(
        client, task_queue=task_queue, workflows=[PurchaseWorkflow], activities=world.activities()
    ):
        handle = await hand_off(
            client,
            provider="mercadopago",
            provider_order_id=payment_id,
            notice=PaymentNotice(action="payment.created"),
            config=CONFIG,
            task_queue=task_queue,
        )
        await plain_time_skipping_env.sleep(timedelta(seconds=30))
        assert "failed on purpose" in await _pending_failure(handle, activity)
        await plain_time_skipping_env.sleep(timedelta(hours=6))
        events = len((await handle.fetch_history()).events)
        assert events < 100, f"{events} history events after a six-hour outage"
        world.heal(failing)
        await plain_time_skipping_env.sleep(timedelta(minutes=3))  # the next attempt's backoff
        await wait_for_stage(handle, "completed", seconds=60)


@pytest.mark.db
@pytest.mark.sandbox
async def test_failed_fetch_names_the_outage_on_the_order(sandbox_settings, pool, sandbox) -> None:
    """While Mercado Pago is down the order (created if need be) says so in `last_error`."""
    await sandbox.fault("mercadopago", "get_payment", status=503)
    environment = ActivityEnvironment()
    environment.info = dataclasses.replace(
        environment.info, workflow_id="purchase:mercadopago:424242"
    )
    async with open_provider_clients(sandbox_settings) as providers:
        activities = PurchaseActivities(sandbox_settings, pool, providers)
        with pytest.raises(ApplicationError):
            await environment.run(
                activities.fetch_payment, FetchPayment(provider_order_id="424242")
            )
    async with pool.connection() as conn:
        order = await orders.get_order(conn, "purchase:mercadopago:424242")
    assert order is not None and order.stage == "awaiting_payment"
    assert order.last_error and "mercadopago" in order.last_error and "503" in order.last_error
