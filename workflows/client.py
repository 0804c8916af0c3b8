"""How processes outside a workflow (API, worker, CLI) reach Temporal. Not workflow code."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime

from telemetry import tracing
from telemetry.temporal import RequestIdInterceptor
from workflows import search_attributes


async def connect(address: str, namespace: str, *, runtime: Runtime | None = None) -> Client:
    """A client that speaks pydantic models, like the worker, and carries the request id (and
    the trace, when tracing is on) into workflows; workers built on it inherit both."""
    return await Client.connect(
        address,
        namespace=namespace,
        data_converter=pydantic_data_converter,
        interceptors=[RequestIdInterceptor(), *tracing.temporal_interceptors()],
        runtime=runtime,
    )


async def register_search_attributes(client: Client) -> list[str]:
    """Register Entrega's search attributes (Keyword and Datetime) on the namespace; returns
    those added.

    Idempotent: attributes already present are left alone.
    """
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    missing = [k for k in search_attributes.ALL if k.name not in existing.custom_attributes]
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=client.namespace,
                search_attributes={
                    k.name: IndexedValueType.ValueType(k.indexed_value_type) for k in missing
                },
            )
        )
    return [k.name for k in missing]
