"""The purchase stack for the reconciliation tests (their schedules: `start_schedules` in
tests/conftest.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from tests.purchases.stack import purchase_stack, stack_settings

# Short enough for a test, long enough for 50 hand-offs on a loaded 2-core machine.
INTERVAL = timedelta(seconds=5)


@pytest.fixture
async def stack(database_url, pool, temporal_client, sandbox, task_queue):
    settings = stack_settings(
        database_url, sandbox.url, temporal_client, task_queue, reconcile_interval="5s"
    )
    async with purchase_stack(settings, pool, temporal_client, sandbox) as stack:
        yield stack


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
