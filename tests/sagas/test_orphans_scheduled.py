"""The orphan check as the schedule runs it: a saga still running or parked, and anything younger
than the grace period, is not an orphan; findings are kinds and ids only, never fixed."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from activities.reconcile import running_sagas
from tests.reconcile.conftest import eventually
from workflows.reconcile_orphans import ReconcileOrphansWorkflow
from workflows.reconcile_types import OrphansInput

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


async def test_parked_saga_is_not_an_orphan_until_it_ends(stack, db_fault, caplog) -> None:
    """A registration parked on a refused compensation keeps its auth user: not reported while
    the saga is parked, reported (by id, without the e-mail) once nobody is working on it."""
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

    assert await scheduled_run(stack, timedelta(0)) == []
    await stack.temporal.get_workflow_handle(registration).terminate("test: nobody will fix it")
    with caplog.at_level("WARNING"):
        assert await scheduled_run(stack, timedelta(0)) == [
            ("auth_user_without_profile", user["id"])
        ]
    logged = [r.getMessage() for r in caplog.records if r.name == "activities.reconcile_providers"]
    assert logged == [f"reconcile found orphan auth_user_without_profile {user['id']}"]
    # Reported, never fixed.
    assert len((await stack.sandbox.state())["auth_users"]) == 1


async def test_young_records_wait_for_the_grace_period(stack, pool) -> None:
    """A profile whose auth user vanished a moment ago is not reported within the grace period;
    the same check without grace reports it."""
    account = await stack.registered(0)
    await stack.providers.supabase.delete_user(account["auth_user_id"])
    assert await scheduled_run(stack, timedelta(minutes=30)) == []
    assert await scheduled_run(stack, timedelta(0)) == [
        ("profile_without_auth_user", account["profile_id"])
    ]
