"""The sandbox server: every outside service under its own prefix with its real paths, and the
control API (`/_sandbox/...`) for faults, state, webhooks and the inbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from sandbox import appmax, asaas, control, lovable, mercadopago, persistence, resend, supabase
from sandbox.core import AfterEffects, Reply, Sandbox
from settings import Settings


def create_app(settings: Settings, state_file: Path | None = None) -> FastAPI:
    """A sandbox checking credentials against `settings`' secrets (the app reads the same ones).
    With `state_file` its state outlives the process (`entrega sandbox`); without, it lives in
    memory only (tests)."""
    sandbox = Sandbox(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        keeping = persistence.persisted(sandbox, state_file) if state_file else nullcontext()
        async with keeping:
            try:
                yield
            finally:
                sandbox.faults.clear()  # let hanging requests go so shutdown is prompt
                await sandbox.close()

    app = FastAPI(
        title="Entrega provider sandbox",
        description="Emulates Mercado Pago, AppMax, Asaas, Supabase Auth, Lovable and Resend.",
        lifespan=lifespan,
    )
    app.state.sandbox = sandbox
    app.add_middleware(AfterEffects, sandbox=sandbox)
    if state_file is not None:
        app.add_middleware(persistence.MarkChanges, sandbox=sandbox)

    @app.exception_handler(Reply)
    async def _reply(_: Request, exc: Reply) -> JSONResponse:
        return exc.response

    app.include_router(control.control_router(sandbox))
    app.include_router(mercadopago.router(sandbox))
    app.include_router(asaas.router(sandbox))
    app.include_router(asaas.control_router(sandbox))
    app.include_router(appmax.control_router(sandbox))
    app.include_router(supabase.router(sandbox))
    app.include_router(lovable.router(sandbox))
    app.include_router(lovable.control_router(sandbox))
    app.include_router(resend.router(sandbox))
    return app
