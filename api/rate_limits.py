"""Per-client rate limits of registration and checkout: 429 `rate_limited` with Retry-After.

Counted in PostgreSQL (db/rate_limits.py), so the limits hold across every API process. The
client address is the TCP peer as the ASGI server reports it (behind a proxy, run uvicorn with
--proxy-headers and --forwarded-allow-ips so that it is the client's)."""

from __future__ import annotations

import math
import random
from datetime import timedelta

from fastapi import Request
from psycopg_pool import AsyncConnectionPool

from api.errors import ApiError
from contracts.errors import ErrorCode
from db import rate_limits

_PRUNE_EVERY = 0.01  # share of requests that also delete ended windows (sampling, not security)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def enforce(
    pool: AsyncConnectionPool, window: timedelta, limits: list[tuple[str, str, int]]
) -> None:
    """Count this request against each (kind, who, limit); a limit of 0 is off. Raise 429 when
    any is exceeded, with the longest wait among them."""
    waits = []
    window_seconds = window.total_seconds()
    async with pool.connection() as conn:
        if random.random() < _PRUNE_EVERY:
            await rate_limits.prune(conn, window_seconds=window_seconds)
        for kind, who, limit in limits:
            if limit <= 0:
                continue
            wait = await rate_limits.hit(
                conn, rate_limits.bucket(kind, who), limit=limit, window_seconds=window_seconds
            )
            if wait is not None:
                waits.append(wait)
    if waits:
        retry_after = math.ceil(max(waits))
        raise ApiError(
            ErrorCode.RATE_LIMITED,
            {"retry_after_seconds": retry_after},
            headers={"Retry-After": str(retry_after)},
        )
