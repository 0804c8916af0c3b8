"""The read side operators see, shared by the admin API and `entrega orders`.

Functions take a connection; the caller owns the transaction. The workflow's live status is the
caller's to add (`workflows.purchase_client.live_status`): this layer reads only the database.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from db import operations
from db.orders import Order, get_order, order_emails, order_logs

# Finished orders are not cancelled: a completed one keeps its access (refund it at the
# provider to take the access away: the refund revokes it); the others are already over.
FINISHED_STAGES = ("completed", "revoked", "cancelled")


def order_view(order: Order) -> dict[str, Any]:
    """An order as operators see it: never the encrypted password, only whether one is held."""
    view = order.model_dump(mode="json", exclude={"encrypted_password"})
    view["password_pending"] = order.encrypted_password is not None
    return view


async def resolve_order_id(conn: AsyncConnection[Any], key: str) -> tuple[str, bool] | None:
    """The workflow id for an order id, a provider's order id or a workflow id, and whether the
    order is recorded (a workflow may not have recorded its first stage yet); None if unknown."""
    order = await get_order(conn, key)
    if order is not None:
        return order.order_id, True
    if key.startswith("purchase:"):
        return key, False
    return None


async def describe_order(conn: AsyncConnection[Any], key: str) -> dict[str, Any] | None:
    """Everything the database knows about one order, or None; `workflow` is left None."""
    order = await get_order(conn, key)
    if order is None:
        return None
    logs = await order_logs(conn, order.order_id)
    emails = await order_emails(conn, order.order_id)
    actions = await operations.actions_on(conn, order.order_id)
    return {
        "order": order_view(order),
        "workflow": None,
        "integration_logs": [entry.model_dump(mode="json") for entry in logs],
        "email_logs": [entry.model_dump(mode="json") for entry in emails],
        "operator_actions": [entry.model_dump(mode="json") for entry in actions],
    }
