"""Issue 15: what one happy-path order costs the Temporal server (patch purchases-lean-path).

Each search-attribute upsert is a history event and a visibility write on the server, each patch
marker comes with one more (`TemporalChangeVersion`), and each local activity is a marker; the
stage writes ride in the activities that do the step. The orders table still sees every stage.
"""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from contracts.purchases import CREATE_USER, PaymentNotice
from tests.purchases.fakes import FakeWorld, approved, wait_for_stage
from tests.purchases.test_workflow_schedule import CONFIG
from workflows.purchase_client import hand_off

pytestmark = pytest.mark.timeskip


async def _approved_order(client: Client, task_queue: str, world: FakeWorld):  # type: ignore[no-untyped-def]
    """A purchase of an approved payment, handed off as the gateway does."""
    payment_id = uuid.uuid4().hex[:10]
    world.payments[payment_id] = approved()
    return await hand_off(
        client,
        provider="mercadopago",
        provider_order_id=payment_id,
        notice=PaymentNotice(action="payment.created"),
        config=CONFIG,
        task_queue=task_queue,
    )


async def _history_of_completed_order(client: Client, task_queue: str, world: FakeWorld):  # type: ignore[no-untyped-def]
    handle = await _approved_order(client, task_queue, world)
    await wait_for_stage(handle, "completed")
    return await handle.fetch_history()


async def test_an_order_costs_four_upserts_three_local_activities(
    client: Client, task_queue: str, world: FakeWorld
) -> None:
    """Before: six patch markers' worth of upserts, the order id upserted again, `queued`
    upserted and replaced in the same task, and six local activities (four stage writes)."""
    history = await _history_of_completed_order(client, task_queue, world)
    upserted: list[str] = []
    markers: Counter[str] = Counter()
    scheduled: list[str] = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
            upserted.append(",".join(sorted(fields.indexed_fields)))
        elif event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            markers[event.marker_recorded_event_attributes.marker_name] += 1
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled.append(event.activity_task_scheduled_event_attributes.activity_type.name)
    assert upserted == [
        "TemporalChangeVersion",
        "EntregaStage,EntregaStageSince",  # creating_user
        "EntregaStage,EntregaStageSince",  # sending_credentials
        "EntregaStage,EntregaStageSince",  # completed
    ]
    assert markers == {"core_patch": 1, "core_local_activity": 3}
    assert sorted(scheduled) == [
        "purchases.create_user",
        "purchases.send_confirmation",
        "purchases.send_credentials",
    ]
    # The table still sees every stage, in order, once.
    assert world.stages == ["queued", "creating_user", "sending_credentials", "completed"]


async def test_a_failed_user_creation_still_writes_each_stage_once_per_round(
    client: Client, task_queue: str, world: FakeWorld
) -> None:
    """create_user writes `creating_user` when the order is not in it already: its quick
    retries add no stage line; the next round (after failed_at_user) writes it again."""
    world.fail(CREATE_USER, times=3)  # two quick attempts fail, then the first of round two
    stages = await _stages_after_a_retry_round(client, task_queue, world)
    assert stages == [
        "queued",
        "creating_user",
        "failed_at_user",
        "creating_user",
        "sending_credentials",
        "completed",
    ]


async def _stages_after_a_retry_round(
    client: Client, task_queue: str, world: FakeWorld
) -> list[str]:
    handle = await _approved_order(client, task_queue, world)
    await wait_for_stage(handle, "failed_at_user")
    await handle.signal("retry")
    await wait_for_stage(handle, "completed")
    return world.stages
