"""The purchase stack with the reconciliation schedules of this test only (their ids carry the
test's task queue, so tests sharing the session's Temporal server never see each other's)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import Client

from settings import Settings
from tests.purchases.stack import purchase_stack, stack_settings
from workflows.schedules import ensure_schedules, schedules

# Short enough for a test, long enough for 50 hand-offs on a loaded 2-core machine.
INTERVAL = timedelta(seconds=5)


@pytest.fixture
async def stack(database_url, pool, temporal_client, sandbox, task_queue):
    settings = stack_settings(
        database_url, sandbox.url, temporal_client, task_queue, reconcile_interval="5s"
    )
    async with purchase_stack(settings, pool, temporal_client, sandbox) as stack:
        yield stack


@pytest.fixture
async def start_schedules() -> AsyncIterator[Callable[[Client, Settings], Awaitable[None]]]:
    """Create this test's schedules on demand; delete them afterwards."""
    made: list[tuple[Client, str]] = []

    async def start(client: Client, settings: Settings) -> None:
        prefix = f"{settings.temporal_task_queue}-"
        await ensure_schedules(client, settings, prefix=prefix)
        made.extend((client, sid) for sid in schedules(settings, prefix=prefix))

    yield start
    for client, sid in made:
        try:
            await client.get_schedule_handle(sid).delete()
        except Exception:  # noqa: S110 - the server may be gone already (outage tests)
            pass


async def eventually(check: Callable[[], Awaitable[Any]], *, seconds: float) -> Any:
    """Poll `check` until it returns something truthy; fail after `seconds`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    last: Any = None
    while loop.time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.25)
    raise AssertionError(f"not within {seconds} s; last seen: {last!r}")
