"""What the scheduled reconciliation asks the database: which of a page of provider payments
Entrega does not reflect yet. One query per page, whatever the page holds.

Functions take a connection; the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection

# Stages in which the customer has (or is about to get) access: a refund must still reach them.
# failed_permanent is included: a parked order learns of the refund and stops for good.
ACCESS_STAGES = (
    "queued",
    "creating_user",
    "failed_at_user",
    "sending_credentials",
    "failed_at_email",
    "completed",
    "failed_permanent",
)


async def unreflected_mercadopago(
    conn: AsyncConnection[Any], payments: Sequence[tuple[str, str]]
) -> list[tuple[str, bool]]:
    """Of (payment id, state) pairs, those whose order does not reflect the state, each with
    whether an order exists: approved with no order or one still awaiting payment; refunded or
    charged back with access granted; rejected while still awaiting payment."""
    if not payments:
        return []
    cur = await conn.execute(
        """
        SELECT c.id, o.order_id IS NOT NULL
          FROM unnest(%(ids)s::text[], %(states)s::text[]) WITH ORDINALITY AS c(id, state, n)
          LEFT JOIN orders o ON o.provider = 'mercadopago' AND o.provider_order_id = c.id
         WHERE (c.state = 'approved' AND (o.order_id IS NULL OR o.stage = 'awaiting_payment'))
            OR (c.state IN ('refunded', 'charged_back') AND o.stage = ANY(%(access)s))
            OR (c.state = 'rejected' AND o.stage = 'awaiting_payment')
         ORDER BY c.n
        """,
        {
            "ids": [p[0] for p in payments],
            "states": [p[1] for p in payments],
            "access": list(ACCESS_STAGES),
        },
    )
    return [(row[0], row[1]) for row in await cur.fetchall()]


async def unapplied_asaas(
    conn: AsyncConnection[Any], payments: Sequence[tuple[str, str]]
) -> list[str]:
    """Of paid (payment id, subscription id) pairs, those of a subscription a profile holds now
    whose period is not recorded. Charges of replaced or unknown subscriptions change nothing
    when applied, so they are not handed off again and again (`entrega reconcile` reports
    duplicates)."""
    if not payments:
        return []
    cur = await conn.execute(
        """
        SELECT c.id
          FROM unnest(%(ids)s::text[], %(subs)s::text[]) WITH ORDINALITY AS c(id, sub, n)
         WHERE EXISTS (SELECT 1 FROM profiles p WHERE p.subscription_id = c.sub)
           AND NOT EXISTS (SELECT 1 FROM subscription_periods s WHERE s.payment_id = c.id)
         ORDER BY c.n
        """,
        {"ids": [p[0] for p in payments], "subs": [p[1] for p in payments]},
    )
    return [row[0] for row in await cur.fetchall()]
