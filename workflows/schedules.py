"""Entrega's Temporal Schedules, created or updated by `entrega setup` (and so `entrega dev`).

Not workflow code: the CLI runs this against the cluster. Every schedule skips a run while the
previous one still runs (overlap SKIP), shows in the Web UI's Schedules page, and can be paused
there or with `temporal schedule toggle --schedule-id <id> --pause`; updating a schedule keeps
an operator's pause.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from contracts.reconcile import (
    SCHEDULE_ASAAS,
    SCHEDULE_MERCADOPAGO,
    SCHEDULE_ORPHANS,
    SCHEDULE_PRUNE,
    OrphansInput,
    PruneInput,
    ReconcileInput,
)
from settings import Settings
from workflows.prune_signatures import PruneWebhookSignaturesWorkflow
from workflows.reconcile_asaas import ReconcileAsaasWorkflow
from workflows.reconcile_mercadopago import ReconcileMercadoPagoWorkflow
from workflows.reconcile_orphans import ReconcileOrphansWorkflow

SCHEDULE_IDS = (SCHEDULE_MERCADOPAGO, SCHEDULE_ASAAS, SCHEDULE_ORPHANS, SCHEDULE_PRUNE)


def _schedule(
    run: Callable[..., Any], arg: Any, workflow_id: str, every: timedelta, settings: Settings
) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            run,
            arg,
            # Temporal appends each run's scheduled time to this id.
            id=workflow_id,
            task_queue=settings.temporal_task_queue,
            # A run that cannot finish within a few intervals is failed, visibly, and the next
            # one starts.
            execution_timeout=max(every * 3, timedelta(minutes=30)),
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(note="managed by `entrega setup`"),
    )


def schedules(settings: Settings, *, prefix: str = "") -> dict[str, Schedule]:
    """Every schedule by id (`prefix` lets tests run their own next to the real ones)."""
    lookback = ReconcileInput(lookback=settings.reconcile_lookback)
    # Signatures older than twice the freshness window are refused as stale anyway.
    stale = 2 * settings.mercadopago_signature_tolerance_seconds
    found: dict[str, tuple[Callable[..., Any], Any, timedelta]] = {
        SCHEDULE_MERCADOPAGO: (
            ReconcileMercadoPagoWorkflow.run,
            lookback,
            settings.reconcile_interval,
        ),
        SCHEDULE_ASAAS: (ReconcileAsaasWorkflow.run, lookback, settings.reconcile_interval),
        SCHEDULE_ORPHANS: (
            ReconcileOrphansWorkflow.run,
            OrphansInput(grace=settings.reconcile_orphans_grace),
            settings.reconcile_orphans_interval,
        ),
        SCHEDULE_PRUNE: (
            PruneWebhookSignaturesWorkflow.run,
            PruneInput(older_than=stale),
            settings.prune_signatures_interval,
        ),
    }
    return {
        prefix + sid: _schedule(run, arg, prefix + sid, every, settings)
        for sid, (run, arg, every) in found.items()
    }


async def ensure_schedules(
    client: Client, settings: Settings, *, prefix: str = ""
) -> dict[str, str]:
    """Create each schedule, or update it to today's settings; answers "created" or "updated"
    per id. Idempotent; a paused schedule stays paused."""
    outcome: dict[str, str] = {}
    for sid, schedule in schedules(settings, prefix=prefix).items():
        try:
            await client.create_schedule(sid, schedule)
            outcome[sid] = "created"
            continue
        except ScheduleAlreadyRunningError:
            pass

        def keep_state(current: ScheduleUpdateInput, new: Schedule = schedule) -> ScheduleUpdate:
            new.state = current.description.schedule.state
            return ScheduleUpdate(schedule=new)

        await client.get_schedule_handle(sid).update(keep_state)
        outcome[sid] = "updated"
    return outcome
