"""asaas_events and subscription periods: the profile's periods are set from Asaas payments as
Asaas records them (re-read, never taken from a webhook body), and the database is their single
source of truth (the credit ledger reads it)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

BRAZIL = ZoneInfo("America/Sao_Paulo")
_CYCLE_MONTHS = {"MONTHLY": 1, "BIMONTHLY": 2, "QUARTERLY": 3, "SEMIANNUALLY": 6, "YEARLY": 12}
_CYCLE_DAYS = {"WEEKLY": 7, "BIWEEKLY": 14}


def _add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for last_day in (day.day, 30, 29, 28):  # 31 Jan + 1 month is 28/29 Feb
        try:
            return day.replace(year=year, month=month, day=last_day)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def period_for(due_date: date, cycle: str) -> tuple[datetime, datetime]:
    """The period a payment due on `due_date` pays for: from that day's start in Brasília time to
    the same day one cycle later (periods of consecutive payments meet exactly)."""
    if cycle in _CYCLE_DAYS:
        end_day = due_date + timedelta(days=_CYCLE_DAYS[cycle])
    else:
        end_day = _add_months(due_date, _CYCLE_MONTHS.get(cycle, 1))
    start = datetime.combine(due_date, time.min, BRAZIL)
    return start, datetime.combine(end_day, time.min, BRAZIL)


async def record_event(
    conn: AsyncConnection[Any],
    *,
    event_id: str,
    event: str,
    payment_id: str | None,
    subscription_id: str | None,
    customer_id: str | None,
    payload: dict[str, Any],
) -> bool:
    """Record the event once; False when this event id was already recorded (a re-delivery)."""
    cur = await conn.execute(
        """
        INSERT INTO asaas_events
               (event_id, event, payment_id, subscription_id, customer_id, payload)
        VALUES (%(event_id)s, %(event)s, %(payment_id)s, %(subscription_id)s, %(customer_id)s,
                %(payload)s)
        ON CONFLICT (event_id) DO NOTHING
        """,
        {
            "event_id": event_id,
            "event": event,
            "payment_id": payment_id,
            "subscription_id": subscription_id,
            "customer_id": customer_id,
            "payload": Jsonb(payload),
        },
    )
    return cur.rowcount == 1


async def subscription_role(conn: AsyncConnection[Any], subscription_id: str) -> str | None:
    """ "current" when a profile holds this subscription now, "replaced" when a checkout attempt
    created it but the profile has moved on (a later checkout, or the attempt was undone after
    saving), None when no profile or attempt has it saved."""
    row = await (
        await conn.execute(
            """
            SELECT EXISTS (SELECT 1 FROM profiles WHERE subscription_id = %(sub)s),
                   EXISTS (SELECT 1 FROM checkout_attempts WHERE subscription_id = %(sub)s)
            """,
            {"sub": subscription_id},
        )
    ).fetchone()
    assert row is not None
    current, created = row
    if current:
        return "current"
    return "replaced" if created else None


async def apply_paid_period(
    conn: AsyncConnection[Any], *, payment_id: str, subscription_id: str, due_date: date
) -> str:
    """Record the period a paid charge of the profile's CURRENT subscription pays for.

    Only the subscription the profile holds now may set its plan and period: a late payment of a
    subscription a later checkout replaced never moves the profile back to the old plan. The
    period starts on the charge's due date, whenever it was paid (paying next month early does
    not end this month: see 0050_subscription_periods.sql). The profile's current_period_* and
    plan keep the latest paid period and never move backwards. Keyed by the payment: applying
    one twice changes nothing. Returns "applied", "already_applied" or "not_current"."""
    row = await (
        await conn.execute(
            """
            SELECT p.profile_id, coalesce(a.plan_id, p.plan_id) AS plan_id, pl.cycle
              FROM profiles p
              LEFT JOIN checkout_attempts a ON a.subscription_id = p.subscription_id
              LEFT JOIN plans pl ON pl.plan_id = coalesce(a.plan_id, p.plan_id)
             WHERE p.subscription_id = %(sub)s
               FOR UPDATE OF p
            """,
            {"sub": subscription_id},
        )
    ).fetchone()
    if row is None:
        return "not_current"
    profile_id, plan_id, cycle = row
    start, end = period_for(due_date, cycle or "MONTHLY")
    inserted = await conn.execute(
        """
        INSERT INTO subscription_periods
               (payment_id, profile_id, subscription_id, plan_id, period_start, period_end)
        VALUES (%(payment)s, %(profile)s, %(sub)s, %(plan)s, %(start)s, %(end)s)
        ON CONFLICT (payment_id) DO NOTHING
        """,
        {
            "payment": payment_id,
            "profile": profile_id,
            "sub": subscription_id,
            "plan": plan_id,
            "start": start,
            "end": end,
        },
    )
    await conn.execute(
        "UPDATE asaas_events SET profile_id = %(profile)s"
        " WHERE payment_id = %(payment)s AND profile_id IS NULL",
        {"profile": profile_id, "payment": payment_id},
    )
    if inserted.rowcount == 0:
        return "already_applied"
    await conn.execute(
        """
        UPDATE profiles
           SET current_period_start = %(start)s, current_period_end = %(end)s,
               plan_id = %(plan)s
         WHERE profile_id = %(profile)s
           AND (current_period_start IS NULL OR current_period_start <= %(start)s)
        """,
        {"profile": profile_id, "plan": plan_id, "start": start, "end": end},
    )
    return "applied"
