"""`entrega setup`'s schedules: created once, updated idempotently, overlap SKIP, a pause kept."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import ScheduleActionStartWorkflow, ScheduleOverlapPolicy

from contracts.reconcile import ReconcileInput
from tests.conftest import make_settings
from workflows.schedules import SCHEDULE_IDS, ensure_schedules

pytestmark = pytest.mark.temporal


async def test_created_then_updated_keeping_a_pause(temporal_client, task_queue) -> None:
    """First call creates the four schedules, the next updates them to new settings; a schedule
    an operator paused stays paused; every one skips a run while the previous one runs."""
    prefix = f"{task_queue}-"
    settings = make_settings(temporal_task_queue=task_queue)
    ids = [prefix + sid for sid in SCHEDULE_IDS]
    try:
        assert await ensure_schedules(temporal_client, settings, prefix=prefix) == dict.fromkeys(
            ids, "created"
        )
        mercadopago = temporal_client.get_schedule_handle(prefix + "reconcile-mercadopago")
        await mercadopago.pause(note="investigating")

        changed = make_settings(
            temporal_task_queue=task_queue, reconcile_interval="2m", reconcile_lookback="72h"
        )
        assert await ensure_schedules(temporal_client, changed, prefix=prefix) == dict.fromkeys(
            ids, "updated"
        )
        described = await mercadopago.describe()
        schedule = described.schedule
        assert schedule.state.paused and schedule.state.note == "investigating"
        assert [i.every for i in schedule.spec.intervals] == [timedelta(minutes=2)]
        action = schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert action.workflow == "ReconcileMercadoPagoWorkflow"
        assert action.task_queue == task_queue
        # The schedule keeps its argument as Temporal got it: encrypted by the codec.
        [arg] = await temporal_client.data_converter.decode(list(action.args), [ReconcileInput])  # type: ignore[arg-type]
        assert arg.lookback == timedelta(hours=72)
        for sid in ids:
            policy = (await temporal_client.get_schedule_handle(sid).describe()).schedule.policy
            assert policy.overlap == ScheduleOverlapPolicy.SKIP
        hourly = await temporal_client.get_schedule_handle(prefix + "reconcile-orphans").describe()
        assert not hourly.schedule.state.paused
        assert [i.every for i in hourly.schedule.spec.intervals] == [timedelta(hours=1)]
    finally:
        for sid in ids:
            await temporal_client.get_schedule_handle(sid).delete()
