"""A time-skipping server of this package's own: its six-hour outages must not wait on the
workflows other tests leave behind on the session's server, which hold its clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from tests.conftest import TEST_SERVER_BIN
from tests.support import register_on_test_server


@pytest.fixture(scope="module")
async def own_time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(TEST_SERVER_BIN), data_converter=pydantic_data_converter
    )
    await register_on_test_server(env.client)
    yield env
    await env.shutdown()
