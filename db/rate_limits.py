"""Fixed-window request counters in PostgreSQL, shared by every API process."""

from __future__ import annotations

import hashlib
from typing import Any

from psycopg import AsyncConnection


def bucket(kind: str, who: str) -> str:
    """The counter's key: a hash, so no e-mail or address is stored."""
    return hashlib.sha256(f"{kind}:{who}".encode()).hexdigest()


async def hit(
    conn: AsyncConnection[Any], bucket: str, *, limit: int, window_seconds: int
) -> float | None:
    """Count one request in `bucket`'s current window: None while within `limit`, else the
    seconds until the window ends (the Retry-After)."""
    cur = await conn.execute(
        """
        INSERT INTO rate_limit_hits AS h (bucket, window_start, hits)
        VALUES (%(bucket)s,
                to_timestamp(floor(extract(epoch FROM now()) / %(window)s) * %(window)s), 1)
        ON CONFLICT (bucket, window_start) DO UPDATE SET hits = h.hits + 1
        RETURNING h.hits,
                  extract(epoch FROM h.window_start + make_interval(secs => %(window)s) - now())
        """,
        {"bucket": bucket, "window": window_seconds},
    )
    row = await cur.fetchone()
    assert row is not None
    hits, remaining = int(row[0]), float(row[1])
    return None if hits <= limit else max(remaining, 1.0)


async def prune(conn: AsyncConnection[Any], *, window_seconds: int) -> None:
    """Forget windows that have ended."""
    await conn.execute(
        "DELETE FROM rate_limit_hits WHERE window_start < now() - make_interval(secs => %s)",
        (window_seconds,),
    )
