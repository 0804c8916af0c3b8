"""The orphan check as the schedule runs it: a saga still running or parked, and anything younger
than the grace period, is not an orphan; findings are kinds and ids only, never fixed."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from activities.reconcile import find_orphans, running_sagas
from contracts.reconcile import OrphansInput
from tests.reconcile.conftest import eventually
from workflows.reconcile_orphans import ReconcileOrphansWorkflow

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox]


async def scheduled_run(stack, grace: timedelta) -> list[tuple[str, str]]:
    settings = stack.app.state.settings
    result = await stack.temporal.execute_workflow(
        ReconcileOrphansWorkflow.run,
        OrphansInput(grace=grace),
        id=f"reconcile-orphans-{settings.temporal_task_queue}-{asyncio.get_running_loop().time()}",
        task_queue=settings.temporal_task_queue,
    )
    return sorted((o.kind, o.id) for o in result.found)


async def _listed(stack, query: str) -> list[str]:
    return [w.id async for w in stack.temporal.list_workflows(query)]


async def test_parked_saga_is_not_an_orphan(stack, db_fault) -> None:
    """A registration parked on a refused compensation keeps its auth user: the check without
    the saga rule calls it an orphan, the scheduled one does not; once the saga is retried and
    finishes its undoing, there is nothing left to report."""
    await db_fault("profiles", "auth_user_id")
    await stack.sandbox.fault("supabase", "delete_user", status=403)
    # The API would wait out its answer timeout for a saga that parked; nobody needs the answer.
    answer = asyncio.create_task(stack.register(0))
    queue = stack.app.state.settings.temporal_task_queue
    parked = f'EntregaStage = "compensation_failed" AND TaskQueue = "{queue}"'
    [registration] = await eventually(lambda: _listed(stack, parked), seconds=20)
    answer.cancel()
    assert registration in await running_sagas(stack.temporal)
    [user] = (await stack.sandbox.state())["auth_users"]

    without_rule = await find_orphans(stack.pool, stack.providers)
    assert [(o.kind, o.id) for o in without_rule] == [("auth_user_without_profile", user["id"])]
    assert await scheduled_run(stack, timedelta(0)) == []

    await stack.sandbox.clear_faults()
    await stack.temporal.get_workflow_handle(registration).signal("retry")
    await eventually(lambda: _gone(stack, registration), seconds=30)
    assert (await stack.sandbox.state())["auth_users"] == []
    assert await scheduled_run(stack, timedelta(0)) == []


async def _gone(stack, workflow_id: str) -> bool:
    return workflow_id not in await running_sagas(stack.temporal)


async def test_young_records_wait_for_the_grace_period(stack, caplog) -> None:
    """A profile whose auth user vanished a moment ago is not reported within the grace period;
    the same check without grace reports it, logging kind and id only, and fixes nothing."""
    account = await stack.registered(0)
    await stack.providers.supabase.delete_user(account["auth_user_id"])
    assert await scheduled_run(stack, timedelta(minutes=30)) == []
    with caplog.at_level("WARNING"):
        assert await scheduled_run(stack, timedelta(0)) == [
            ("profile_without_auth_user", account["profile_id"])
        ]
    logged = [r.getMessage() for r in caplog.records if r.name == "activities.reconcile_providers"]
    assert logged == [f"reconcile found orphan profile_without_auth_user {account['profile_id']}"]
    assert len(await stack.profiles()) == 1


class _Recorder:
    """A metric meter that remembers the name of every counter added to."""

    def __init__(self) -> None:
        self.added: list[tuple[str, int, dict[str, str]]] = []

    def create_counter(self, name: str, *_: object, **__: object) -> object:
        recorder = self

        class _Counter:
            def add(self, value: int, attributes: dict[str, str] | None = None) -> None:
                recorder.added.append((name, value, attributes or {}))

        return _Counter()

    def with_additional_attributes(self, _: object) -> _Recorder:
        return self


async def test_an_orphan_moves_the_metric_the_alert_watches(stack) -> None:
    """The scheduled check counts what it finds in `entrega_reconcile_orphans_found_total`, the
    metric the EntregaOrphansFound alert and the dashboard read (not a name of its own)."""
    from pathlib import Path

    from temporalio.testing import ActivityEnvironment

    from activities.reconcile_providers import ReconcileActivities

    account = await stack.registered(0)
    await stack.providers.supabase.delete_user(account["auth_user_id"])
    env = ActivityEnvironment(client=stack.temporal)
    env.metric_meter = _Recorder()  # type: ignore[assignment]
    activities = ReconcileActivities(stack.app.state.settings, stack.pool, stack.providers)
    await env.run(activities.find_orphans, OrphansInput(grace=timedelta(0)))
    assert env.metric_meter.added == [  # type: ignore[attr-defined]
        ("entrega_reconcile_orphans_found_total", 1, {"kind": "profile_without_auth_user"})
    ]
    alerts = (Path(__file__).parents[2] / "ops" / "alerts.yml").read_text()
    assert "entrega_reconcile_orphans_found_total" in alerts
