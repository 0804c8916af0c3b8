"""profiles, plans and checkout_attempts: the accounts of the subscription product.

Duplicates are decided by the unique indexes of 0002 (lower(email), phone, cpf_cnpj), never by a
check-then-insert: `insert_profile` turns a unique violation into `DuplicateProfile(field)`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, errors
from psycopg.rows import class_row
from pydantic import BaseModel


class Profile(BaseModel):
    profile_id: uuid.UUID
    auth_user_id: uuid.UUID
    name: str
    email: str
    phone: str
    cpf_cnpj: str
    asaas_customer_id: str | None
    subscription_id: str | None
    plan_id: str | None
    current_period_start: datetime | None
    current_period_end: datetime | None
    created_at: datetime


class Plan(BaseModel):
    plan_id: str
    name: str
    price_cents: int
    cycle: str
    monthly_credits: int


class CheckoutAttempt(BaseModel):
    profile_id: uuid.UUID
    attempt: int
    workflow_id: str
    plan_id: str
    subscription_id: str | None
    outcome: str | None
    billing_type: str | None = None


class DuplicateProfile(Exception):
    """A profile with this e-mail, phone or CPF/CNPJ already exists; `field` names which."""

    def __init__(self, field: str) -> None:
        super().__init__(f"duplicate {field}")
        self.field = field


class CheckoutInProgress(Exception):
    """Another checkout attempt of this profile has not finished yet."""


# Which field each unique index protects (index names from 0002_accounts.sql).
_UNIQUE_FIELDS = {
    "profiles_email_key": "email",
    "profiles_phone_key": "phone",
    "profiles_cpf_cnpj_key": "cpf_cnpj",
}

# A constant, never user input: the f-strings below that splice it in are safe (hence noqa S608).
_PROFILE_COLUMNS = """
    profile_id, auth_user_id, name, email, phone, cpf_cnpj, asaas_customer_id, subscription_id,
    plan_id, current_period_start, current_period_end, created_at
"""


async def insert_profile(
    conn: AsyncConnection[Any],
    *,
    auth_user_id: uuid.UUID,
    name: str,
    email: str,
    phone: str,
    cpf_cnpj: str,
) -> Profile:
    """Insert the profile of `auth_user_id`, or return it if it exists (a retried insert).

    Raises DuplicateProfile when another profile holds the e-mail, phone or CPF/CNPJ.
    """
    cur = conn.cursor(row_factory=class_row(Profile))
    try:
        async with conn.transaction():
            await cur.execute(
                f"""
                INSERT INTO profiles (auth_user_id, name, email, phone, cpf_cnpj)
                VALUES (%(auth_user_id)s, %(name)s, %(email)s, %(phone)s, %(cpf_cnpj)s)
                ON CONFLICT (auth_user_id) DO NOTHING
                RETURNING {_PROFILE_COLUMNS}
                """,  # noqa: S608
                {
                    "auth_user_id": auth_user_id,
                    "name": name,
                    "email": email,
                    "phone": phone,
                    "cpf_cnpj": cpf_cnpj,
                },
            )
            inserted = await cur.fetchone()
    except errors.UniqueViolation as exc:
        constraint = exc.diag.constraint_name or ""
        raise DuplicateProfile(_UNIQUE_FIELDS.get(constraint, constraint)) from exc
    if inserted is not None:
        return inserted
    existing = await get_by_auth_user_id(conn, auth_user_id)
    assert existing is not None, "ON CONFLICT (auth_user_id) implies the row exists"
    return existing


async def find_conflict(
    conn: AsyncConnection[Any], *, email: str, phone: str, cpf_cnpj: str
) -> str | None:
    """The first field an existing profile already holds, if any.

    Only a fast path to refuse obvious duplicates early; the unique indexes still decide.
    """
    row = await (
        await conn.execute(
            """
            SELECT CASE WHEN lower(email) = lower(%(email)s) THEN 'email'
                        WHEN phone = %(phone)s THEN 'phone'
                        ELSE 'cpf_cnpj' END
              FROM profiles
             WHERE lower(email) = lower(%(email)s) OR phone = %(phone)s OR cpf_cnpj = %(cpf)s
             ORDER BY 1
             LIMIT 1
            """,
            {"email": email, "phone": phone, "cpf": cpf_cnpj},
        )
    ).fetchone()
    return str(row[0]) if row else None


async def unfinished_checkout_of_email(conn: AsyncConnection[Any], email: str) -> str | None:
    """The workflow id of the checkout attempt in flight of the profile with this e-mail, if any
    (a first attempt that failed keeps it in flight while it undoes the account)."""
    row = await (
        await conn.execute(
            """
            SELECT a.workflow_id FROM profiles p
              JOIN checkout_attempts a ON a.profile_id = p.profile_id AND a.outcome IS NULL
             WHERE lower(p.email) = lower(%(email)s)
            """,
            {"email": email},
        )
    ).fetchone()
    return str(row[0]) if row else None


async def get_by_auth_user_id(
    conn: AsyncConnection[Any], auth_user_id: uuid.UUID
) -> Profile | None:
    cur = conn.cursor(row_factory=class_row(Profile))
    await cur.execute(
        f"SELECT {_PROFILE_COLUMNS} FROM profiles WHERE auth_user_id = %(id)s",  # noqa: S608
        {"id": auth_user_id},
    )
    return await cur.fetchone()


async def get_profile(conn: AsyncConnection[Any], profile_id: uuid.UUID) -> Profile | None:
    cur = conn.cursor(row_factory=class_row(Profile))
    await cur.execute(
        f"SELECT {_PROFILE_COLUMNS} FROM profiles WHERE profile_id = %(id)s",  # noqa: S608
        {"id": profile_id},
    )
    return await cur.fetchone()


async def list_profiles(conn: AsyncConnection[Any]) -> list[Profile]:
    cur = conn.cursor(row_factory=class_row(Profile))
    await cur.execute(f"SELECT {_PROFILE_COLUMNS} FROM profiles ORDER BY created_at")  # noqa: S608
    return await cur.fetchall()


async def delete_profile(conn: AsyncConnection[Any], profile_id: uuid.UUID) -> bool:
    """Delete the profile; False when it was already gone."""
    cur = await conn.execute("DELETE FROM profiles WHERE profile_id = %(id)s", {"id": profile_id})
    return cur.rowcount > 0


async def delete_profile_of_auth_user(conn: AsyncConnection[Any], auth_user_id: uuid.UUID) -> bool:
    cur = await conn.execute(
        "DELETE FROM profiles WHERE auth_user_id = %(id)s", {"id": auth_user_id}
    )
    return cur.rowcount > 0


async def set_asaas_customer(
    conn: AsyncConnection[Any], profile_id: uuid.UUID, customer_id: str
) -> None:
    await conn.execute(
        "UPDATE profiles SET asaas_customer_id = %(customer)s WHERE profile_id = %(id)s",
        {"id": profile_id, "customer": customer_id},
    )


async def clear_asaas_customer(
    conn: AsyncConnection[Any], profile_id: uuid.UUID, customer_id: str | None
) -> None:
    """Forget the saved customer id, only if it is still `customer_id` (or any, when None)."""
    await conn.execute(
        """
        UPDATE profiles SET asaas_customer_id = NULL
         WHERE profile_id = %(id)s
           AND (%(customer)s::text IS NULL OR asaas_customer_id = %(customer)s)
        """,
        {"id": profile_id, "customer": customer_id},
    )


async def set_subscription(
    conn: AsyncConnection[Any], profile_id: uuid.UUID, workflow_id: str, subscription_id: str
) -> None:
    """Save the subscription on the profile and on the checkout attempt that created it."""
    await conn.execute(
        "UPDATE profiles SET subscription_id = %(sub)s WHERE profile_id = %(id)s",
        {"id": profile_id, "sub": subscription_id},
    )
    await conn.execute(
        "UPDATE checkout_attempts SET subscription_id = %(sub)s WHERE workflow_id = %(wf)s",
        {"wf": workflow_id, "sub": subscription_id},
    )


async def clear_subscription(
    conn: AsyncConnection[Any],
    profile_id: uuid.UUID,
    workflow_id: str,
    previous_subscription_id: str | None,
) -> None:
    """Undo `set_subscription`: the profile gets back the subscription it had before the attempt."""
    await conn.execute(
        """
        UPDATE profiles p SET subscription_id = %(previous)s
          FROM checkout_attempts a
         WHERE p.profile_id = %(id)s AND a.workflow_id = %(wf)s
           AND p.subscription_id = a.subscription_id
        """,
        {"id": profile_id, "wf": workflow_id, "previous": previous_subscription_id},
    )
    await conn.execute(
        "UPDATE checkout_attempts SET subscription_id = NULL WHERE workflow_id = %(wf)s",
        {"wf": workflow_id},
    )


async def get_plan(conn: AsyncConnection[Any], plan_id: str) -> Plan | None:
    cur = conn.cursor(row_factory=class_row(Plan))
    await cur.execute(
        "SELECT plan_id, name, price_cents, cycle, monthly_credits FROM plans"
        " WHERE plan_id = %(id)s",
        {"id": plan_id},
    )
    return await cur.fetchone()


_ATTEMPT_COLUMNS = (
    "profile_id, attempt, workflow_id, plan_id, subscription_id, outcome, billing_type"
)


async def start_checkout_attempt(
    conn: AsyncConnection[Any],
    profile_id: uuid.UUID,
    plan_id: str,
    billing_type: str | None = None,
) -> CheckoutAttempt:
    """Number and record the next checkout attempt of the profile, with what it asks for.

    Raises CheckoutInProgress when one is still running (the partial unique index decides).
    """
    cur = conn.cursor(row_factory=class_row(CheckoutAttempt))
    try:
        async with conn.transaction():
            await cur.execute(
                f"""
                INSERT INTO checkout_attempts
                       (profile_id, attempt, workflow_id, plan_id, billing_type)
                SELECT %(profile)s, n, 'checkout:' || %(profile)s::text || ':' || n, %(plan)s,
                       %(billing)s
                  FROM (SELECT coalesce(max(attempt), 0) + 1 AS n
                          FROM checkout_attempts WHERE profile_id = %(profile)s) AS next
                RETURNING {_ATTEMPT_COLUMNS}
                """,  # noqa: S608
                {"profile": profile_id, "plan": plan_id, "billing": billing_type},
            )
            attempt = await cur.fetchone()
    except errors.UniqueViolation as exc:
        raise CheckoutInProgress(str(profile_id)) from exc
    assert attempt is not None
    return attempt


async def claim_checkout_attempt(
    conn: AsyncConnection[Any], profile_id: uuid.UUID, plan_id: str, billing_type: str
) -> tuple[CheckoutAttempt, bool]:
    """The attempt a checkout request runs: a newly numbered one, or (True) the profile's attempt
    already in flight, which the request may only start if nobody has (it adopts it).

    Raises CheckoutInProgress only if attempts keep finishing and starting under it."""
    for _ in range(2):
        try:
            return await start_checkout_attempt(conn, profile_id, plan_id, billing_type), False
        except CheckoutInProgress:
            pending = await unfinished_checkout_attempt(conn, profile_id)
            if pending is not None:
                return pending, True
            # It finished between the two statements: number the next one.
    raise CheckoutInProgress(str(profile_id))


async def unfinished_checkout_attempt(
    conn: AsyncConnection[Any], profile_id: uuid.UUID
) -> CheckoutAttempt | None:
    """The profile's attempt still in flight (at most one), if any."""
    cur = conn.cursor(row_factory=class_row(CheckoutAttempt))
    await cur.execute(
        f"SELECT {_ATTEMPT_COLUMNS} FROM checkout_attempts"  # noqa: S608
        " WHERE profile_id = %(profile)s AND outcome IS NULL",
        {"profile": profile_id},
    )
    return await cur.fetchone()


async def get_checkout_attempt(
    conn: AsyncConnection[Any], workflow_id: str
) -> CheckoutAttempt | None:
    """The attempt of this checkout workflow id (an Asaas subscription's externalReference)."""
    cur = conn.cursor(row_factory=class_row(CheckoutAttempt))
    await cur.execute(
        f"SELECT {_ATTEMPT_COLUMNS} FROM checkout_attempts WHERE workflow_id = %(wf)s",  # noqa: S608
        {"wf": workflow_id},
    )
    return await cur.fetchone()


async def saved_attempt_subscriptions(conn: AsyncConnection[Any]) -> dict[str, str]:
    """Checkout workflow id -> the subscription that attempt saved, for every attempt that did."""
    cur = await conn.execute(
        "SELECT workflow_id, subscription_id FROM checkout_attempts"
        " WHERE subscription_id IS NOT NULL"
    )
    return {str(wf): str(sub) for wf, sub in await cur.fetchall()}


async def finish_checkout_attempt(
    conn: AsyncConnection[Any], workflow_id: str, outcome: str
) -> None:
    """Close the attempt (a no-op when its profile, and so the attempt, was rolled back)."""
    await conn.execute(
        """
        UPDATE checkout_attempts SET outcome = %(outcome)s, finished_at = now()
         WHERE workflow_id = %(wf)s AND outcome IS NULL
        """,
        {"wf": workflow_id, "outcome": outcome},
    )
