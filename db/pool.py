"""The application's connection pool: opened once per process by the API and the worker."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool


async def open_pool(database_url: str, *, max_size: int = 20) -> AsyncConnectionPool:
    """An open pool that has proved it can connect (fails fast on a wrong DATABASE_URL)."""
    pool = AsyncConnectionPool(
        database_url,
        min_size=1,
        max_size=max_size,
        open=False,
        kwargs={"autocommit": False},
        name="entrega",
    )
    await pool.open(wait=True, timeout=15)
    return pool
