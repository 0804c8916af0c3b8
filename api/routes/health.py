"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from api.deps import TemporalConnection
from api.errors import error_response, responses
from contracts.errors import ErrorCode
from telemetry.metrics import api_metrics

# Probes and metrics live at the root, where load balancers and Prometheus look for them.
router = APIRouter(prefix="", tags=["health"])

READINESS_TIMEOUT_SECONDS = 2.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


async def _check_database(request: Request) -> None:
    async with request.app.state.pool.connection(timeout=READINESS_TIMEOUT_SECONDS) as conn:
        await conn.execute("SELECT 1")


async def _check_temporal(request: Request) -> None:
    temporal: TemporalConnection = request.app.state.temporal
    client = await temporal.get()
    await client.service_client.check_health()


def _reason(exc: Exception) -> str:
    """A short reason for operators: the first line (gRPC errors carry long transport dumps)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


@router.get("/readyz", responses=responses(503))
async def readyz(request: Request) -> JSONResponse:
    """Ready only when PostgreSQL and Temporal both answer."""
    checks = {"database": _check_database, "temporal": _check_temporal}
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            await asyncio.wait_for(check(request), READINESS_TIMEOUT_SECONDS)
            results[name] = "ok"
        except TimeoutError:
            results[name] = f"unavailable: no answer within {READINESS_TIMEOUT_SECONDS:g}s"
        except Exception as exc:
            results[name] = f"unavailable: {_reason(exc)}"
    ready = all(value == "ok" for value in results.values())
    if ready:
        return JSONResponse({"status": "ready", "checks": results})
    return error_response(ErrorCode.NOT_READY, results)


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    """Prometheus text exposition (of every API process sharing PROMETHEUS_MULTIPROC_DIR)."""
    body, content_type = api_metrics()
    return Response(body, media_type=content_type)
