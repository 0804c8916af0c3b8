"""What the scheduled reconciliation workflows and their activities exchange (pydantic, no I/O)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field
from temporalio.common import RetryPolicy

# Schedule ids (docs/interfaces.md, "Temporal"): each runs the workflow type of the same purpose.
SCHEDULE_MERCADOPAGO = "reconcile-mercadopago"
SCHEDULE_ASAAS = "reconcile-asaas"
SCHEDULE_ORPHANS = "reconcile-orphans"
SCHEDULE_PRUNE = "prune-webhook-signatures"

# Activity names (the activity type on the wire; the workflows call the methods they name).
MERCADOPAGO_PAGE = "reconcile.mercadopago_page"
ASAAS_PAGE = "reconcile.asaas_page"
FIND_ORPHANS = "reconcile.find_orphans"
PRUNE_SIGNATURES = "reconcile.prune_signatures"

# The event an order (or Asaas payment) recovered by a reconciliation gets in integration_logs.
RECOVERED_EVENT = "recovered_by_reconcile"
# Keep a run's result small: the ids beyond this many are counted, not listed.
MAX_LISTED = 200

# A page read retries through short blips and rate limits (honouring Retry-After), then fails
# the run: a provider outage shows as a failed run in the Web UI, and the next run, whose window
# overlaps this one, catches up.
PAGE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
)
PAGE_TIMEOUT = timedelta(minutes=2)

AsaasSweep = Literal["CONFIRMED", "RECEIVED"]


class ReconcileInput(BaseModel):
    """How far back a provider reconciliation looks, and its page size."""

    lookback: timedelta = timedelta(hours=48)
    page_size: int = Field(default=100, ge=1, le=100)


class PageRequest(BaseModel):
    begin: datetime
    end: datetime
    offset: int = 0
    limit: int = 100
    # Asaas only: which paid status this sweep lists.
    sweep: AsaasSweep | None = None


class PageResult(BaseModel):
    read: int
    has_more: bool
    # Workflow ids handed off (`purchase:mercadopago:<id>`, `asaas-payment:<id>`).
    recovered: list[str] = Field(default_factory=list)


class ReconcileResult(BaseModel):
    provider: str
    begin: datetime
    end: datetime
    pages: int = 0
    read: int = 0
    recovered_count: int = 0
    recovered: list[str] = Field(default_factory=list)

    def add(self, page: PageResult) -> None:
        self.pages += 1
        self.read += page.read
        self.recovered_count += len(page.recovered)
        room = MAX_LISTED - len(self.recovered)
        self.recovered.extend(page.recovered[: max(room, 0)])


class OrphanFinding(BaseModel):
    """An orphan by kind and id only: the scheduled run logs no personal data."""

    kind: str
    id: str


class OrphansInput(BaseModel):
    grace: timedelta = timedelta(minutes=30)


class OrphansResult(BaseModel):
    found: list[OrphanFinding] = Field(default_factory=list)


class PruneInput(BaseModel):
    older_than: timedelta = timedelta(minutes=10)
