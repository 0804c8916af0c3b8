"""From the legacy counters to the ledger: the credit_usage rows that legacy shipments imply.

A database of the old system has shipments without usage rows and `credit_purchases.
consumed_credits` counters (the shape of migration 0030). For every such shipment, in time order per
profile, the backfill applies the ledger's own rule: a monthly credit while the shipment's period
has some left (periods are the profile's recorded period stepped back by whole months, with the
profile's plan limit), otherwise a purchased credit in spending order among the purchases that
existed and had not expired at the time. The result must agree with every counter; if it does not
for some profile, nothing is written and the profiles are named. Running it again writes nothing.
Migration 0032 drops the counters and refuses to run before this has succeeded.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row


@dataclass
class UsageRow:
    shipment_id: uuid.UUID
    profile_id: uuid.UUID
    source_type: str
    purchase_id: uuid.UUID | None
    period_start: datetime | None
    period_end: datetime | None
    unit: int


@dataclass
class BackfillReport:
    """What the backfill wrote (or would write), per profile: credits by source."""

    counters_present: bool = True
    written: dict[uuid.UUID, Counter[str]] = field(default_factory=dict)
    rows: list[UsageRow] = field(default_factory=list)


class BackfillRefused(Exception):
    """The legacy numbers of some profiles cannot be reconciled; nothing was written."""

    def __init__(self, problems: dict[uuid.UUID, list[str]]) -> None:
        super().__init__(f"{len(problems)} profile(s) cannot be reconciled")
        self.problems = problems


@dataclass
class _Purchase:
    purchase_id: uuid.UUID
    credits_amount: int
    consumed_credits: int
    expires_at: datetime | None
    created_at: datetime
    ledger_used: int
    ledger_max_unit: int
    assigned: int = 0

    def order(self) -> tuple[bool, datetime, datetime, str]:
        """The ledger's spending order: soonest expiry first (none last), then the oldest."""
        return (
            self.expires_at is None,
            self.expires_at or self.created_at,
            self.created_at,
            str(self.purchase_id),
        )

    def spendable_at(self, at: datetime) -> bool:
        left = self.credits_amount - self.ledger_used - self.assigned
        alive = self.expires_at is None or self.expires_at > at
        return left > 0 and alive and self.created_at <= at


async def has_counters(conn: AsyncConnection[Any]) -> bool:
    """Whether `credit_purchases.consumed_credits` still exists (migration 0032 not yet applied)."""
    cur = await conn.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = 'credit_purchases' AND column_name = 'consumed_credits'"
    )
    return await cur.fetchone() is not None


# Legacy shipments with the subscription period each fell in: the recorded period moved back by
# k whole months, k found from the month difference (one of est, est + 1). None after the recorded
# period or without a plan.
_LEGACY_SHIPMENTS = """
SELECT s.shipment_id, s.profile_id, s.created_at, per.period_start, per.period_end,
       coalesce(pl.monthly_credits, 0) AS monthly_credits
FROM shipments s
JOIN profiles p ON p.profile_id = s.profile_id
LEFT JOIN plans pl ON pl.plan_id = p.plan_id
LEFT JOIN LATERAL (
    SELECT p.current_period_start - make_interval(months => k) AS period_start,
           CASE WHEN k = 0 THEN p.current_period_end
                ELSE p.current_period_start - make_interval(months => k - 1) END AS period_end
    FROM generate_series(
             greatest(0, (extract(year FROM age(p.current_period_start, s.created_at)) * 12
                          + extract(month FROM age(p.current_period_start, s.created_at)))::int),
             greatest(0, (extract(year FROM age(p.current_period_start, s.created_at)) * 12
                          + extract(month FROM age(p.current_period_start, s.created_at)))::int) + 2
         ) AS k
    WHERE p.plan_id IS NOT NULL
      AND s.created_at < p.current_period_end
      AND p.current_period_start - make_interval(months => k) <= s.created_at
    ORDER BY k
    LIMIT 1
) per ON true
WHERE NOT EXISTS (SELECT 1 FROM credit_usage u WHERE u.shipment_id = s.shipment_id)
ORDER BY s.profile_id, s.created_at, s.shipment_id
"""

_PURCHASES = """
SELECT cp.purchase_id, cp.profile_id, cp.credits_amount, cp.consumed_credits, cp.expires_at,
       cp.created_at,
       (SELECT count(*) FROM credit_usage u
         WHERE u.purchase_id = cp.purchase_id AND u.source_type = 'purchase')::int
           AS ledger_used,
       (SELECT coalesce(max(u.unit), 0) FROM credit_usage u
         WHERE u.purchase_id = cp.purchase_id AND u.source_type = 'purchase') AS ledger_max_unit
FROM credit_purchases cp
"""

_MONTHLY_UNITS = """
SELECT profile_id, period_start, max(unit) AS max_unit, count(*)::int AS used
FROM credit_usage WHERE source_type = 'monthly'
GROUP BY profile_id, period_start
"""


async def backfill(conn: AsyncConnection[Any], *, dry_run: bool = False) -> BackfillReport:
    """Write the credit_usage rows the legacy data implies, or raise BackfillRefused.

    The caller owns the transaction; the tables are locked against spends until it ends.
    """
    if not await has_counters(conn):
        return BackfillReport(counters_present=False)
    await conn.execute("LOCK TABLE shipments, credit_usage, credit_purchases IN EXCLUSIVE MODE")
    cur = conn.cursor(row_factory=dict_row)

    purchases: dict[uuid.UUID, list[_Purchase]] = defaultdict(list)
    for row in await (await cur.execute(_PURCHASES)).fetchall():
        profile_id = row.pop("profile_id")
        purchases[profile_id].append(_Purchase(**row))
    monthly: dict[tuple[uuid.UUID, datetime], list[int]] = {}
    for row in await (await cur.execute(_MONTHLY_UNITS)).fetchall():
        monthly[(row["profile_id"], row["period_start"])] = [row["max_unit"], row["used"]]
    shipments: dict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
    for row in await (await cur.execute(_LEGACY_SHIPMENTS)).fetchall():
        shipments[row["profile_id"]].append(row)

    report = BackfillReport()
    problems: dict[uuid.UUID, list[str]] = defaultdict(list)
    for profile_id in sorted(set(shipments) | set(purchases), key=str):
        rows, issues = _reconcile(profile_id, shipments[profile_id], purchases[profile_id], monthly)
        if issues:
            problems[profile_id] = issues
        elif rows:
            report.rows.extend(rows)
            report.written[profile_id] = Counter(r.source_type for r in rows)
    if problems:
        raise BackfillRefused(dict(problems))
    if not dry_run and report.rows:
        async with cur.copy(
            "COPY credit_usage (shipment_id, profile_id, source_type, purchase_id, period_start, "
            "period_end, unit) FROM STDIN"
        ) as copy:
            for r in report.rows:
                await copy.write_row(
                    (
                        r.shipment_id,
                        r.profile_id,
                        r.source_type,
                        r.purchase_id,
                        r.period_start,
                        r.period_end,
                        r.unit,
                    )
                )
    return report


def _reconcile(
    profile_id: uuid.UUID,
    shipments: list[dict[str, Any]],
    purchases: list[_Purchase],
    monthly: dict[tuple[uuid.UUID, datetime], list[int]],
) -> tuple[list[UsageRow], list[str]]:
    """One profile's usage rows by the ledger's rule, and what disagrees with its counters."""
    rows: list[UsageRow] = []
    issues: list[str] = []
    in_order = sorted(purchases, key=_Purchase.order)
    for s in shipments:
        period = s["period_start"]
        if period is not None:
            max_unit, used = monthly.setdefault((profile_id, period), [0, 0])
            if used < s["monthly_credits"]:
                monthly[(profile_id, period)] = [max_unit + 1, used + 1]
                rows.append(
                    UsageRow(
                        s["shipment_id"],
                        profile_id,
                        "monthly",
                        None,
                        period,
                        s["period_end"],
                        max_unit + 1,
                    )
                )
                continue
        chosen = next((p for p in in_order if p.spendable_at(s["created_at"])), None)
        if chosen is None:
            issues.append(
                f"shipment {s['shipment_id']} of {s['created_at']:%Y-%m-%d %H:%M}: no monthly "
                "credit left in its period and no purchase that could have paid for it"
            )
            continue
        chosen.assigned += 1
        rows.append(
            UsageRow(
                s["shipment_id"],
                profile_id,
                "purchase",
                chosen.purchase_id,
                None,
                None,
                chosen.ledger_max_unit + chosen.assigned,
            )
        )
    for p in purchases:
        if p.consumed_credits > p.credits_amount:
            issues.append(
                f"purchase {p.purchase_id}: consumed_credits {p.consumed_credits} exceeds "
                f"its {p.credits_amount} credits"
            )
        elif shipments and p.ledger_used + p.assigned != p.consumed_credits:
            issues.append(
                f"purchase {p.purchase_id}: consumed_credits says {p.consumed_credits}, "
                f"the shipments account for {p.ledger_used + p.assigned}"
            )
        elif not shipments and p.ledger_used < p.consumed_credits:
            issues.append(
                f"purchase {p.purchase_id}: consumed_credits says {p.consumed_credits}, "
                f"but no shipment is left to account for it (ledger: {p.ledger_used})"
            )
    return rows, issues
