"""What operators need beyond the orders themselves: the record of their own actions, the orders
stuck in a stage, and how long provisioning took. Functions take a connection."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from db.orders import Order

# docs/interfaces.md: an order awaiting payment or finished is not stuck.
STUCK_STAGES = (
    "queued",
    "creating_user",
    "sending_credentials",
    "failed_at_user",
    "failed_at_email",
    "failed_permanent",
)


class OperatorAction(BaseModel):
    id: int
    action: str
    target: str
    actor: str
    via: str
    reason: str | None
    details: dict[str, Any]
    created_at: datetime


class StuckOrder(Order):
    stage_since: datetime


async def record_action(
    conn: AsyncConnection[Any],
    *,
    action: str,
    target: str,
    actor: str,
    via: str,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        """
        INSERT INTO operator_actions (action, target, actor, via, reason, details)
        VALUES (%(action)s, %(target)s, %(actor)s, %(via)s, %(reason)s, %(details)s)
        """,
        {
            "action": action,
            "target": target,
            "actor": actor,
            "via": via,
            "reason": reason,
            "details": Jsonb(details or {}),
        },
    )


async def actions_on(conn: AsyncConnection[Any], target: str) -> list[OperatorAction]:
    cur = conn.cursor(row_factory=class_row(OperatorAction))
    await cur.execute(
        "SELECT * FROM operator_actions WHERE target = %(target)s ORDER BY id", {"target": target}
    )
    return await cur.fetchall()


async def stuck_orders(
    conn: AsyncConnection[Any], older_than: timedelta, *, limit: int = 1000
) -> list[StuckOrder]:
    """Orders in a stuck stage whose current stage began more than `older_than` ago, oldest
    first. A stage begins at its latest `stage_changed` line in integration_logs."""
    cur = conn.cursor(row_factory=class_row(StuckOrder))
    await cur.execute(
        """
        SELECT o.*, COALESCE(s.created_at, o.updated_at) AS stage_since
        FROM orders o
        LEFT JOIN LATERAL (
            SELECT created_at FROM integration_logs l
            WHERE l.workflow_id = o.order_id AND l.event = 'stage_changed'
            ORDER BY l.id DESC LIMIT 1
        ) s ON true
        WHERE o.stage = ANY(%(stages)s)
          AND COALESCE(s.created_at, o.updated_at) < now() - %(older_than)s
        ORDER BY stage_since LIMIT %(limit)s
        """,
        {"stages": list(STUCK_STAGES), "older_than": older_than, "limit": limit},
    )
    return await cur.fetchall()


async def provisioning_seconds(conn: AsyncConnection[Any], order_id: str) -> float | None:
    """Seconds from the order entering `queued` (payment approved) until now."""
    row = await (
        await conn.execute(
            """
            SELECT extract(epoch FROM now() - min(created_at))::float8 FROM integration_logs
            WHERE workflow_id = %(order_id)s AND event = 'stage_changed' AND stage = 'queued'
            """,
            {"order_id": order_id},
        )
    ).fetchone()
    return None if row is None or row[0] is None else float(row[0])
