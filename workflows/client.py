"""How processes outside a workflow (API, worker, CLI) reach Temporal. Not workflow code."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.runtime import Runtime

from contracts import search_attributes
from settings import Settings
from telemetry import tracing
from telemetry.temporal import RequestIdInterceptor
from workflows.codec import EncryptionCodec, PayloadKey


def data_converter(keys: Sequence[PayloadKey]) -> DataConverter:
    """The one data converter of every Entrega client and worker: pydantic models, encrypted by
    the payload codec, and failures whose message and stack trace are encrypted too (error
    messages can quote personal data)."""
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(keys),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


async def connect(settings: Settings, *, runtime: Runtime | None = None) -> Client:
    """A client of the configured namespace that speaks the worker's data converter and carries
    the request id (and the trace, when tracing is on) into workflows; workers built on it
    inherit all three."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings.payload_keys),
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
