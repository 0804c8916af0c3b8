"""The control API (`/_sandbox/...`): faults, state, where webhooks go, and the inbox."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import HTMLResponse
from pydantic import AnyHttpUrl, BaseModel

from sandbox.core import Reply, Sandbox
from sandbox.faults import FaultSpec
from sandbox.inbox import render_inbox
from sandbox.rate_limits import RateLimitSpec


class Config(BaseModel):
    gateway_url: AnyHttpUrl


def control_router(sandbox: Sandbox) -> APIRouter:
    api = APIRouter(prefix="/_sandbox", tags=["control"])

    @api.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @api.post("/faults", status_code=201)
    async def add_fault(spec: FaultSpec) -> dict[str, Any]:
        return {"id": sandbox.faults.add(spec).id}

    @api.get("/faults")
    async def list_faults() -> list[dict[str, object]]:
        return sandbox.faults.views()

    @api.delete("/faults", status_code=204)
    async def clear_faults() -> Response:
        sandbox.faults.clear()
        return Response(status_code=204)

    @api.delete("/faults/{fault_id}", status_code=204)
    async def remove_fault(fault_id: str) -> Response:
        if not sandbox.faults.remove(fault_id):
            raise Reply(404, {"error": {"code": "not_found", "message": "no such fault"}})
        return Response(status_code=204)

    @api.post("/rate-limits", status_code=201)
    async def add_rate_limit(spec: RateLimitSpec) -> dict[str, Any]:
        """Answer 429 with Retry-After beyond `per_second` calls of that operation."""
        return {"id": sandbox.rate_limits.add(spec).id}

    @api.get("/rate-limits")
    async def list_rate_limits() -> list[dict[str, object]]:
        return sandbox.rate_limits.views()

    @api.delete("/rate-limits", status_code=204)
    async def clear_rate_limits() -> Response:
        sandbox.rate_limits.clear()
        return Response(status_code=204)

    @api.get("/state")
    async def read_state() -> dict[str, list[dict[str, Any]]]:
        return sandbox.state.snapshot()

    @api.delete("/state", status_code=204)
    async def reset_state() -> Response:
        """Forget every record, idempotency key and fault; webhooks go to the default gateway
        again. (`DELETE /_sandbox/faults` clears only the faults.)"""
        sandbox.reset()
        return Response(status_code=204)

    @api.get("/config")
    async def read_config() -> dict[str, str]:
        return {"gateway_url": sandbox.gateway_url}

    @api.put("/config")
    async def write_config(config: Config) -> dict[str, str]:
        sandbox.gateway_url = str(config.gateway_url).rstrip("/")
        return {"gateway_url": sandbox.gateway_url}

    @api.get("/inbox", response_class=HTMLResponse)
    async def inbox(to: str | None = None) -> str:
        """The sent e-mails, newest first, as their recipients would see them."""
        emails = sandbox.state.emails
        if to:
            emails = [e for e in emails if any(to.lower() == r.lower() for r in e["to"])]
        return render_inbox(list(reversed(emails)), to)

    return api
