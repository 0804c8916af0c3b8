"""/readyz tells the truth about PostgreSQL and Temporal."""

from __future__ import annotations

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool

from api.app import create_app
from db import embedded
from tests.conftest import make_settings

pytestmark = [pytest.mark.db, pytest.mark.temporal]


async def _readyz(app) -> httpx.Response:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return await client.get("/readyz")


async def test_ready_when_database_and_temporal_answer(database_url, temporal_env) -> None:
    """With both servers up, /readyz answers 200 ready."""
    settings = make_settings(
        database_url=database_url,
        temporal_address=temporal_env.client.service_client.config.target_host,
    )
    response = await _readyz(create_app(settings))
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"database": "ok", "temporal": "ok"}


async def test_not_ready_when_database_stopped(tmp_path, temporal_env) -> None:
    """A database that has stopped makes /readyz answer 503 naming it."""
    data = tmp_path / "pg"
    url = embedded.start(data)
    pool = AsyncConnectionPool(url, min_size=1, max_size=2, open=False, timeout=1)
    await pool.open(wait=True)
    try:
        embedded.stop(data)
        settings = make_settings(database_url=url)
        app = create_app(settings, pool=pool, temporal=temporal_env.client)
        response = await _readyz(app)
    finally:
        await pool.close()
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "not_ready"
    assert error["details"]["database"].startswith("unavailable")
    assert error["details"]["temporal"] == "ok"


async def test_not_ready_when_temporal_unreachable(database_url) -> None:
    """An unreachable Temporal makes /readyz answer 503 naming it."""
    from tests.support import free_port

    settings = make_settings(database_url=database_url, temporal_address=f"127.0.0.1:{free_port()}")
    response = await _readyz(create_app(settings))
    assert response.status_code == 503
    reason = response.json()["error"]["details"]["temporal"]
    assert reason.startswith("unavailable: ")
    assert reason != "unavailable: RuntimeError"
    assert "\n" not in reason
