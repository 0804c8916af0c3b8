"""An activity's own failure, written on the order while the server retries it (the workflow,
which usually writes `last_error`, does not run between the attempts of a regular activity)."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection


async def record_failure(
    conn: AsyncConnection[Any],
    *,
    order_id: str,
    provider: str,
    provider_order_id: str,
    error: str,
) -> None:
    """Set the order's `last_error` (creating the order, still awaiting its payment, when the
    failure came first); a finished order is left alone."""
    await conn.execute(
        """
        INSERT INTO orders AS o (order_id, provider, provider_order_id, stage, last_error)
        VALUES (%(order_id)s, %(provider)s, %(provider_order_id)s, 'awaiting_payment', %(error)s)
        ON CONFLICT (order_id) DO UPDATE SET last_error = EXCLUDED.last_error, updated_at = now()
        WHERE o.stage NOT IN ('completed', 'revoked', 'cancelled')
        """,
        {
            "order_id": order_id,
            "provider": provider,
            "provider_order_id": provider_order_id,
            "error": error,
        },
    )
