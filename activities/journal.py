"""Writing the audit trail on behalf of workflows, which may not touch the database themselves."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool
from temporalio import activity

from contracts.journal import RECORD, LogEntry
from db.journal import insert_log
from telemetry import events


class JournalActivities:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    @activity.defn(name=RECORD)
    async def record(self, entry: LogEntry) -> None:
        """Append one line to integration_logs."""
        async with self._pool.connection() as conn:
            await insert_log(conn, **entry.model_dump())
        events.saga_journal(
            entry.workflow_id, entry.event, entry.stage, entry.details.get("step"), entry.error
        )
