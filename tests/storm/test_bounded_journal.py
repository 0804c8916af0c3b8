"""A database outage while a saga writes its journal shows as a pending activity and stays small."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from contracts.journal import LogEntry
from contracts.signups import (
    AuthUserRef,
    NewAuthUser,
    NewProfile,
    ProfileRef,
    RegistrationInput,
    RegistrationResult,
)
from tests.storm.test_bounded_local_activities import _pending_failure
from workflows.registration import RegistrationWorkflow

pytestmark = pytest.mark.timeskip


class Accounts:
    """Both registration steps succeed; the journal fails until `healthy`."""

    def __init__(self) -> None:
        self.healthy = False
        self.lines: list[LogEntry] = []

    @activity.defn(name="accounts.create_auth_user")
    async def create_auth_user(self, new: NewAuthUser) -> AuthUserRef:
        return AuthUserRef(auth_user_id=uuid.uuid4())

    @activity.defn(name="accounts.create_profile")
    async def create_profile(self, new: NewProfile) -> ProfileRef:
        return ProfileRef(profile_id=uuid.uuid4(), auth_user_id=new.auth_user_id)

    @activity.defn(name="journal.record")
    async def record(self, entry: LogEntry) -> None:
        if not self.healthy:
            raise ApplicationError("database is down")
        self.lines.append(entry)


@asynccontextmanager
async def registration_running(
    client: Client, task_queue: str, accounts: Accounts
) -> AsyncIterator[WorkflowHandle[Any, RegistrationResult]]:
    """A worker with `accounts` as the activities, and Ana's registration started on it."""
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[RegistrationWorkflow],
        activities=[accounts.create_auth_user, accounts.create_profile, accounts.record],
    ):
        yield await client.start_workflow(
            RegistrationWorkflow.run,
            RegistrationInput(
                name="Ana",
                email="ana@example.com",
                phone="+5511987654321",
                cpf_cnpj="52998224725",
                sealed_password="sealed",
            ),
            id=f"registration:{uuid.uuid4()}",
            task_queue=task_queue,
        )


async def test_six_hour_journal_outage(
    plain_time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    """The journal's local activity gives way to a regular one: pending with its failure, under
    100 events after six hours, and every line written once the database is back."""
    accounts = Accounts()
    async with registration_running(plain_time_skipping_env.client, task_queue, accounts) as handle:
        await plain_time_skipping_env.sleep(timedelta(seconds=30))
        assert "database is down" in await _pending_failure(handle, "journal.record")
        await plain_time_skipping_env.sleep(timedelta(hours=6))
        events = len((await handle.fetch_history()).events)
        assert events < 100, f"{events} history events after a six-hour outage"
        accounts.healthy = True
        await plain_time_skipping_env.sleep(timedelta(minutes=3))
        result = await asyncio.wait_for(handle.result(), 60)
        assert isinstance(result, RegistrationResult)
        assert [line.event for line in accounts.lines].count("step_completed") == 2
