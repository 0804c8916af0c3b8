"""The fixtures most purchase tests share: the whole stack against the sandbox, or the workflow
alone on the time-skipping server with the activities faked (`fakes.FakeWorld`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.purchases.fakes import FakeWorld
from tests.purchases.stack import purchase_stack, stack_settings
from workflows.purchase import PurchaseWorkflow


@pytest.fixture
async def stack(database_url, pool, temporal_client, sandbox, task_queue):
    """API, worker and e-mail worker with the default settings (a test module may override)."""
    settings = stack_settings(database_url, sandbox.url, temporal_client, task_queue)
    async with purchase_stack(settings, pool, temporal_client, sandbox) as stack:
        yield stack


@pytest.fixture
def world() -> FakeWorld:
    return FakeWorld()


@pytest.fixture
async def client(
    time_skipping_env: WorkflowEnvironment, world: FakeWorld, task_queue: str
) -> AsyncIterator[Client]:
    """A client whose task queue runs PurchaseWorkflow against `world`'s fake activities, on the
    test's own time-skipping server."""
    async with Worker(
        time_skipping_env.client,
        task_queue=task_queue,
        workflows=[PurchaseWorkflow],
        activities=world.activities(),
    ):
        yield time_skipping_env.client
