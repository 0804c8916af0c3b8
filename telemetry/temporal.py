"""Carry the request id of the HTTP request that started or signalled a workflow into the
workflow's activities, through Temporal headers (no workflow input changes).

Client side: the id in `logs.REQUEST_ID` goes out in the `entrega-request-id` header of every
start, signal-with-start, signal and update. Worker side: the workflow keeps the id of its start
(or of its latest signal that carried one) and puts it on every activity it schedules; an
activity sets `logs.REQUEST_ID` while it runs, so its log lines carry the id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from temporalio import client as temporal_client
from temporalio import converter, worker
from temporalio.api.common.v1 import Payload

from telemetry.logs import REQUEST_ID

HEADER = "entrega-request-id"


def _with_request_id(
    headers: Mapping[str, Payload], request_id: str | None
) -> Mapping[str, Payload]:
    if not request_id or HEADER in headers:
        return headers
    payload = converter.PayloadConverter.default.to_payloads([request_id])[0]
    return {**headers, HEADER: payload}


def _request_id(headers: Mapping[str, Payload]) -> str | None:
    payload = headers.get(HEADER)
    if payload is None:
        return None
    try:
        value = converter.PayloadConverter.default.from_payloads([payload])[0]
    except Exception:  # a header we cannot read is no reason to fail the work
        return None
    return value if isinstance(value, str) else None


class RequestIdInterceptor(temporal_client.Interceptor, worker.Interceptor):
    """Client and worker interceptor; see the module docstring."""

    def intercept_client(
        self, next: temporal_client.OutboundInterceptor
    ) -> temporal_client.OutboundInterceptor:
        return _ClientOutbound(next)

    def intercept_activity(
        self, next: worker.ActivityInboundInterceptor
    ) -> worker.ActivityInboundInterceptor:
        return _ActivityInbound(next)

    def workflow_interceptor_class(
        self, input: worker.WorkflowInterceptorClassInput
    ) -> type[worker.WorkflowInboundInterceptor]:
        return _WorkflowInbound


class _ClientOutbound(temporal_client.OutboundInterceptor):
    async def start_workflow(self, input: temporal_client.StartWorkflowInput) -> Any:
        input.headers = _with_request_id(input.headers, REQUEST_ID.get())
        return await super().start_workflow(input)

    async def signal_workflow(self, input: temporal_client.SignalWorkflowInput) -> None:
        input.headers = _with_request_id(input.headers, REQUEST_ID.get())
        await super().signal_workflow(input)

    async def start_workflow_update(self, input: temporal_client.StartWorkflowUpdateInput) -> Any:
        input.headers = _with_request_id(input.headers, REQUEST_ID.get())
        return await super().start_workflow_update(input)


class _ActivityInbound(worker.ActivityInboundInterceptor):
    async def execute_activity(self, input: worker.ExecuteActivityInput) -> Any:
        token = REQUEST_ID.set(_request_id(input.headers))
        try:
            return await super().execute_activity(input)
        finally:
            REQUEST_ID.reset(token)


class _WorkflowInbound(worker.WorkflowInboundInterceptor):
    """Per workflow run (inside the sandbox): remembers the request id for its activities."""

    request_id: str | None = None

    def init(self, outbound: worker.WorkflowOutboundInterceptor) -> None:
        super().init(_WorkflowOutbound(outbound, self))

    async def execute_workflow(self, input: worker.ExecuteWorkflowInput) -> Any:
        self.request_id = _request_id(input.headers) or self.request_id
        return await super().execute_workflow(input)

    async def handle_signal(self, input: worker.HandleSignalInput) -> None:
        self.request_id = _request_id(input.headers) or self.request_id
        await super().handle_signal(input)


class _WorkflowOutbound(worker.WorkflowOutboundInterceptor):
    def __init__(self, next: worker.WorkflowOutboundInterceptor, inbound: _WorkflowInbound) -> None:
        super().__init__(next)
        self._inbound = inbound

    def start_activity(self, input: worker.StartActivityInput) -> Any:
        input.headers = _with_request_id(input.headers, self._inbound.request_id)
        return super().start_activity(input)

    def start_local_activity(self, input: worker.StartLocalActivityInput) -> Any:
        input.headers = _with_request_id(input.headers, self._inbound.request_id)
        return super().start_local_activity(input)
