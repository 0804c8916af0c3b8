"""A compensation that keeps failing parks the saga for a person; a `retry` signal finishes it."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.journal import JournalActivities
from contracts.search_attributes import STAGE
from contracts.signups import (
    AuthUserCleanup,
    AuthUserRef,
    NewAuthUser,
    NewProfile,
    ProfileRef,
    RegistrationInput,
)
from tests.sagas.conftest import run_cli
from workflows import saga
from workflows.registration import RegistrationWorkflow

pytestmark = [pytest.mark.db, pytest.mark.temporal]

USER_ID = uuid.uuid4()


class FlakyProviders:
    """Replacement activities: the profile step fails, and deleting the auth user fails until
    `healthy` is set."""

    def __init__(self, *, transient: bool = False) -> None:
        self.healthy = False
        self.transient = transient
        self.delete_attempts = 0
        self.deleted: list[AuthUserCleanup] = []

    @activity.defn(name="accounts.create_auth_user")
    async def create_auth_user(self, new: NewAuthUser) -> AuthUserRef:
        return AuthUserRef(auth_user_id=USER_ID)

    @activity.defn(name="accounts.create_profile")
    async def create_profile(self, new: NewProfile) -> ProfileRef:
        raise ApplicationError("database refused", type="boom", non_retryable=True)

    @activity.defn(name="accounts.delete_profile")
    async def delete_profile(self, target: AuthUserRef) -> None:
        return None

    @activity.defn(name="accounts.delete_auth_user")
    async def delete_auth_user(self, target: AuthUserCleanup) -> None:
        self.delete_attempts += 1
        if not self.healthy:
            # Permanent by default, so the saga parks without waiting out the backoff.
            raise ApplicationError(
                "supabase is down", type="down", non_retryable=not self.transient
            )
        self.deleted.append(target)

    def activities(self, journal) -> list:
        return [
            self.create_auth_user,
            self.create_profile,
            self.delete_profile,
            self.delete_auth_user,
            journal,
        ]


def _new_person() -> RegistrationInput:
    return RegistrationInput(
        name="Ana",
        email="ana@example.com",
        phone="+5511987654321",
        cpf_cnpj="52998224725",
        sealed_password="sealed",
    )


async def _stage(handle) -> str | None:
    description = await handle.describe()
    return description.typed_search_attributes.get(STAGE)


async def test_failing_compensation_parks_until_retry(
    temporal_client, task_queue, pool, database_url
) -> None:
    """The saga waits in compensation_failed (search attribute, query, `entrega sagas list`) and,
    once `entrega sagas retry` is run after the outage, deletes the auth user and fails with
    registration_failed."""
    fakes = FlakyProviders()
    journal = JournalActivities(pool)
    async with Worker(
        temporal_client,
        task_queue=task_queue,
        workflows=[RegistrationWorkflow],
        activities=fakes.activities(journal.record),
    ):
        handle = await temporal_client.start_workflow(
            RegistrationWorkflow.run,
            _new_person(),
            id=f"registration:park-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        for _ in range(100):
            if await _stage(handle) == "compensation_failed":
                break
            await asyncio.sleep(0.1)
        assert await _stage(handle) == "compensation_failed"
        status = await handle.query(RegistrationWorkflow.status)
        assert status.compensations_pending == ["auth_user"]
        assert fakes.deleted == []

        env = {"TEMPORAL_ADDRESS": temporal_client.service_client.config.target_host}
        # Listing reads the visibility store, which trails the workflow by a moment.
        for _ in range(20):
            code, listed = await run_cli(
                "sagas", "list", "--stage", "compensation_failed", "--json", **env
            )
            if handle.id in [row["workflow_id"] for row in json.loads(listed)]:
                break
            await asyncio.sleep(0.25)
        assert code == 0 and handle.id in [row["workflow_id"] for row in json.loads(listed)]

        fakes.healthy = True
        code, _ = await run_cli(
            "sagas",
            "retry",
            handle.id,
            "--reason",
            "Supabase is back",
            DATABASE_URL=database_url,
            ENTREGA_OPERATOR="ana.ops",
            **env,
        )
        assert code == 0
        async with pool.connection() as conn:
            recorded = await (
                await conn.execute(
                    "SELECT action, actor, via, reason FROM operator_actions WHERE target = %s",
                    (handle.id,),
                )
            ).fetchall()
        assert recorded == [("retry", "ana.ops", "cli", "Supabase is back")]
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    assert failure.value.cause.type == "registration_failed"
    assert len(fakes.deleted) == 1 and fakes.deleted[0].email == "ana@example.com"
    assert await _stage(handle) == "rolled_back"
    async with pool.connection() as conn:
        rows = await (
            await conn.execute(
                "SELECT event, details->>'step' FROM integration_logs WHERE workflow_id = %s"
                " AND event IN ('step_failed', 'compensated', 'compensation_failed')"
                " ORDER BY (details->>'seq')::int",
                (handle.id,),
            )
        ).fetchall()
    assert rows == [
        ("step_failed", "profile"),
        ("compensated", "profile"),
        ("compensation_failed", "auth_user"),
        ("compensated", "auth_user"),
    ]


async def test_transient_failures_park_only_after_every_retry(
    temporal_client, task_queue, pool, monkeypatch
) -> None:
    """A compensation failing transiently is retried per COMPENSATION_RETRY before the saga
    parks; a retry signal then runs it again. (Unsandboxed so the schedule can be shortened.)"""
    monkeypatch.setattr(
        saga,
        "COMPENSATION_RETRY",
        RetryPolicy(initial_interval=timedelta(milliseconds=10), maximum_attempts=4),
    )
    fakes = FlakyProviders(transient=True)
    async with Worker(
        temporal_client,
        task_queue=task_queue,
        workflows=[RegistrationWorkflow],
        activities=fakes.activities(JournalActivities(pool).record),
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        handle = await temporal_client.start_workflow(
            RegistrationWorkflow.run,
            _new_person(),
            id=f"registration:transient-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        for _ in range(100):
            if (await handle.query(RegistrationWorkflow.status)).stage == "compensation_failed":
                break
            await asyncio.sleep(0.1)
        assert (await handle.query(RegistrationWorkflow.status)).stage == "compensation_failed"
        assert fakes.delete_attempts == 4
        fakes.healthy = True
        await handle.signal(RegistrationWorkflow.retry)
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    assert fakes.delete_attempts == 5
    assert len(fakes.deleted) == 1
