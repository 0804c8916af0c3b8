"""integration_logs: the audit trail of every step, attempt, error and compensation."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb


async def insert_log(
    conn: AsyncConnection[Any],
    *,
    workflow_id: str,
    event: str,
    stage: str | None = None,
    attempt: int | None = None,
    error: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        """
        INSERT INTO integration_logs (workflow_id, event, stage, attempt, error, details)
        VALUES (%(workflow_id)s, %(event)s, %(stage)s, %(attempt)s, %(error)s, %(details)s)
        """,
        {
            "workflow_id": workflow_id,
            "event": event,
            "stage": stage,
            "attempt": attempt,
            "error": error,
            "details": Jsonb(details or {}),
        },
    )
