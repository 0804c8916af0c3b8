"""The intake inbox (migration 0097): payment notices acknowledged before Temporal had them, kept
until they are handed off. Functions take a connection; `put` belongs in the transaction that
claims the notice's signature or AppMax event, `take` and the rest in the forwarder's."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from contracts.purchases import PaymentNotice, Provider


class InboxNotice(BaseModel):
    id: int
    provider: Provider
    provider_order_id: str
    notice: PaymentNotice
    received_at: datetime
    attempts: int


async def put(
    conn: AsyncConnection[Any], provider: Provider, provider_order_id: str, notice: PaymentNotice
) -> None:
    await conn.execute(
        "INSERT INTO webhook_inbox (provider, provider_order_id, notice) "
        "VALUES (%(provider)s, %(order)s, %(notice)s)",
        {
            "provider": provider,
            "order": provider_order_id,
            "notice": Jsonb(notice.model_dump(mode="json")),
        },
    )


async def take(conn: AsyncConnection[Any], limit: int) -> list[InboxNotice]:
    """The oldest due notices, locked until the transaction ends; other forwarders skip them."""
    cur = conn.cursor(row_factory=class_row(InboxNotice))
    await cur.execute(
        "SELECT id, provider, provider_order_id, notice, received_at, attempts "
        "FROM webhook_inbox WHERE next_attempt_at <= now() "
        "ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED",
        {"limit": limit},
    )
    return await cur.fetchall()


async def forwarded(conn: AsyncConnection[Any], ids: list[int]) -> None:
    if ids:
        await conn.execute("DELETE FROM webhook_inbox WHERE id = ANY(%(ids)s)", {"ids": ids})


async def retry_later(
    conn: AsyncConnection[Any], notice_id: int, error: str, delay_seconds: float
) -> None:
    await conn.execute(
        "UPDATE webhook_inbox SET attempts = attempts + 1, last_error = %(error)s, "
        "next_attempt_at = now() + make_interval(secs => %(delay)s) WHERE id = %(id)s",
        {"id": notice_id, "error": error[:500], "delay": delay_seconds},
    )


async def backlog(conn: AsyncConnection[Any]) -> tuple[int, float | None]:
    """How many notices wait, and the age in seconds of the oldest."""
    cur = await conn.execute(
        "SELECT count(*), extract(epoch FROM now() - min(received_at))::float8 FROM webhook_inbox"
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0]), row[1]
