"""Fixtures of the purchase tests."""

from __future__ import annotations

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from workflows import search_attributes


@pytest.fixture(scope="session")
async def time_skipping_env(time_skipping_env: WorkflowEnvironment) -> WorkflowEnvironment:
    """The session's time-skipping server, with Entrega's search attributes registered.

    The Java test server implements AddSearchAttributes but not List, so this adds them blindly.
    """
    await register_on_test_server(time_skipping_env.client)
    return time_skipping_env


async def register_on_test_server(client: Client) -> None:
    """Add Entrega's search attributes to a time-skipping server (idempotent)."""
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=client.namespace,
                search_attributes={
                    key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
                    for key in search_attributes.ALL
                },
            )
        )
    except RPCError:
        pass  # already registered
