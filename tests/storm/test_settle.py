"""The storm settles only once every refund it made is applied: a refunded order may still say
`completed` while its workflow retries the deactivation with backoff after a Lovable outage, and
checking then reported its user as wrongly active (the 10,000-purchase run on this code)."""

from __future__ import annotations

import pytest
from psycopg_pool import AsyncConnectionPool

from bench.chaos import revocations_pending

pytestmark = [pytest.mark.db]


async def test_a_refund_not_yet_applied_keeps_the_storm_unsettled(
    database_url: str, pool: AsyncConnectionPool
) -> None:
    async with pool.connection() as conn:
        for order_id, stage, refunded in (
            ("purchase:mercadopago:1", "completed", False),  # deactivation still retrying
            ("purchase:mercadopago:2", "revoked", True),
            ("purchase:mercadopago:3", "cancelled", False),  # refunded before access
            ("purchase:mercadopago:4", "failed_at_user", True),  # decided, the run goes on
        ):
            await conn.execute(
                "INSERT INTO orders (order_id, provider, provider_order_id, stage, refunded_at) "
                "VALUES (%s, 'mercadopago', %s, %s, CASE WHEN %s THEN now() END)",
                (order_id, order_id.rsplit(":", 1)[1], stage, refunded),
            )
    ids = [f"purchase:mercadopago:{n}" for n in (1, 2, 3, 4)]
    assert revocations_pending(database_url, ids) == 1
    # An order the storm refunded that the database never heard of is not settled either.
    assert revocations_pending(database_url, [*ids, "purchase:mercadopago:5"]) == 2
    assert revocations_pending(database_url, ids[1:]) == 0
