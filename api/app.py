"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from psycopg_pool import AsyncConnectionPool
from temporalio.client import Client

from api.deps import TemporalConnection
from api.errors import COMMON_ERRORS, install_error_handlers, responses
from api.intake import Intake
from api.middleware import BodyLimitMiddleware, MetricsMiddleware
from api.routes import (
    accounts,
    admin_orders,
    asaas_webhooks,
    credits,
    health,
    purchase_webhooks,
)
from db.credits import SpendCombiner
from db.pool import open_pool
from settings import Settings
from telemetry import tracing
from telemetry.http import RequestContextMiddleware

ROUTERS: list[APIRouter] = [
    health.router,
    purchase_webhooks.router,
    admin_orders.router,
    accounts.router,
    asaas_webhooks.router,
    credits.router,
]


def create_app(
    settings: Settings,
    *,
    pool: AsyncConnectionPool | None = None,
    temporal: Client | None = None,
) -> FastAPI:
    """Build the app. A pool or client passed in is used as is and left open (tests do this);
    otherwise the lifespan opens one pool and one Temporal client and closes them at shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_pool = pool is None
        if pool is None:
            assert settings.database_url, "DATABASE_URL is not set"
            app.state.pool = await open_pool(
                settings.database_url, max_size=settings.db_pool_max_size
            )
        else:
            app.state.pool = pool
        app.state.temporal = TemporalConnection(settings, temporal)
        app.state.spends = SpendCombiner(app.state.pool)
        app.state.intake = Intake(settings, app.state.pool, app.state.temporal)
        forwarder = asyncio.create_task(app.state.intake.forward(), name="intake-forwarder")
        try:
            yield
        finally:
            forwarder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await forwarder
            if own_pool:
                await app.state.pool.close()

    app = FastAPI(
        title="Entrega",
        version="0.1.0",
        summary="Durable purchase provisioning, signup sagas and a race-free credit ledger.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware)
    # Outermost: every answer, a 413 included, carries X-Request-ID and gets its access line.
    app.add_middleware(RequestContextMiddleware)
    for router in ROUTERS:
        # Every route documents the errors any request can meet, in the error shape (FastAPI's
        # own 422 schema would contradict the answers); routes add their own statuses.
        app.include_router(router, responses=responses(*COMMON_ERRORS))
    tracing.instrument_app(app)
    return app


def create_app_from_environment() -> FastAPI:
    """The app of one `entrega api` process among `API_WORKERS`: uvicorn starts each such
    process afresh, so each reads the settings and sets up its own logging and tracing."""
    from telemetry.process import configure_process

    settings = Settings()
    configure_process("api", settings)
    return create_app(settings)
