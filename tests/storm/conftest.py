"""A time-skipping server without the payload codec: these tests read the failure message of a
pending activity from `describe()`, which the codec's failure encoding replaces with "Encoded
failure". Like `time_skipping_env`, each test has its own server, so its clock is its own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from tests.conftest import TEST_SERVER_BIN
from tests.support import register_on_test_server


@pytest.fixture
async def plain_time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(TEST_SERVER_BIN), data_converter=pydantic_data_converter
    )
    await register_on_test_server(env.client)
    yield env
    await env.shutdown()
