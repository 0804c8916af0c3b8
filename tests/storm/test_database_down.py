"""A database that is down or restarting is a 503 in the documented shape, never a 500."""

from __future__ import annotations

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool

from api.app import create_app
from tests.support import serve

pytestmark = [pytest.mark.temporal]


async def test_database_down_answers_503(settings, temporal_client) -> None:
    """With PostgreSQL unreachable (PostgreSQL restarting in the storm), an admin read answers
    503 `database_unavailable` with Retry-After."""
    down = AsyncConnectionPool(
        "host=127.0.0.1 port=1 dbname=entrega connect_timeout=1", min_size=1, timeout=1, open=False
    )
    await down.open(wait=False)
    try:
        app = create_app(settings, pool=down, temporal=temporal_client)
        async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
            response = await http.get(
                "/api/v1/admin/orders/purchase:mercadopago:1",
                headers={"Authorization": "Bearer test-admin-token"},
            )
    finally:
        await down.close(timeout=1)
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "database_unavailable"
    assert response.headers["Retry-After"] == "5"
