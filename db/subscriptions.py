"""asaas_events and subscription periods: the profile's current period is set from Asaas payment
events, and the database is its single source of truth (the credit ledger reads it)."""

from __future__ import annotations

import uuid
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


async def start_period(
    conn: AsyncConnection[Any], *, event_id: str, subscription_id: str, due_date: date
) -> uuid.UUID | None:
    """Set the current period (and plan) of the subscription's profile to the one this payment
    pays for. A period never moves backwards, so a late event for an older payment changes
    nothing. Returns the profile, or None when no profile has this subscription."""
    row = await (
        await conn.execute(
            """
            SELECT p.profile_id, coalesce(a.plan_id, p.plan_id) AS plan_id, pl.cycle
              FROM profiles p
              LEFT JOIN checkout_attempts a ON a.subscription_id = %(sub)s
              LEFT JOIN plans pl ON pl.plan_id = coalesce(a.plan_id, p.plan_id)
             WHERE p.subscription_id = %(sub)s OR p.profile_id = a.profile_id
             LIMIT 1
             FOR UPDATE OF p
            """,
            {"sub": subscription_id},
        )
    ).fetchone()
    if row is None:
        return None
    profile_id, plan_id, cycle = row
    start, end = period_for(due_date, cycle or "MONTHLY")
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
    await conn.execute(
        "UPDATE asaas_events SET profile_id = %(profile)s WHERE event_id = %(event)s",
        {"profile": profile_id, "event": event_id},
    )
    profile: uuid.UUID = profile_id
    return profile
