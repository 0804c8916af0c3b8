"""A line of the audit trail (`integration_logs`) that a workflow asks an activity to write."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

# Activity name (`JournalActivities.record`).
RECORD = "journal.record"


class LogEntry(BaseModel):
    workflow_id: str
    event: str
    stage: str | None = None
    attempt: int | None = None
    error: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
