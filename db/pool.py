"""The application's connection pool: opened once per process by the API and the worker."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

T = TypeVar("T")


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


async def in_autocommit(
    pool: AsyncConnectionPool, work: Callable[[AsyncConnection[Any]], Awaitable[T]]
) -> T:
    """Run `work` on a connection in autocommit, so that each statement is its own transaction:
    a single-statement write then commits on the server, with no round trip to this process
    while its locks are held. The connection goes back to the pool as it came."""
    async with pool.connection() as conn:
        await conn.set_autocommit(True)
        try:
            return await work(conn)
        finally:
            await conn.set_autocommit(False)
