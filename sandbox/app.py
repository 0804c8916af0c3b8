"""The sandbox server: the control API (faults, state, inbox) and the provider emulations."""

from __future__ import annotations

import html
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from settings import Settings


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(title="Entrega provider sandbox")
    state: dict[str, list[Any]] = {"emails": []}

    @app.get("/_sandbox/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/_sandbox/state")
    async def read_state() -> dict[str, list[Any]]:
        return state

    @app.delete("/_sandbox/state", status_code=204)
    async def reset_state() -> None:
        state["emails"].clear()

    @app.get("/_sandbox/inbox", response_class=HTMLResponse)
    async def inbox() -> str:
        items = "".join(f"<li>{html.escape(str(e))}</li>" for e in state["emails"])
        return f"<h1>Caixa de entrada</h1><ul>{items or '<li>Nenhum e-mail ainda.</li>'}</ul>"

    return app
