"""`entrega setup` registers Entrega's search attributes on a bare cluster, idempotently."""

from __future__ import annotations

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from tests.conftest import TEMPORAL_BIN
from workflows.client import register_search_attributes

pytestmark = pytest.mark.temporal


async def test_registers_once_then_is_a_no_op() -> None:
    """On a server without them, the first call adds all three attributes (Keyword and Datetime)
    and the second adds none."""
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(TEMPORAL_BIN), dev_server_log_level="error"
    ) as env:
        assert sorted(await register_search_attributes(env.client)) == [
            "EntregaOrderId",
            "EntregaStage",
            "EntregaStageSince",
        ]
        assert await register_search_attributes(env.client) == []
        listed = await env.client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=env.client.namespace)
        )
        assert {"EntregaStage", "EntregaOrderId"} <= set(listed.custom_attributes)
        assert listed.custom_attributes["EntregaStageSince"] == IndexedValueType.Value(
            "INDEXED_VALUE_TYPE_DATETIME"
        )
