"""The unique indexes, not a check-then-insert, decide duplicate profiles."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from db import profiles as db_profiles

pytestmark = pytest.mark.db


def _profile(**overrides):
    values = {
        "auth_user_id": uuid.uuid4(),
        "name": "Maria",
        "email": "maria@example.com",
        "phone": "+5511987654321",
        "cpf_cnpj": "52998224725",
    }
    return values | overrides


@pytest.mark.parametrize(
    ("clash", "field"),
    [
        ({"email": "MARIA@example.com"}, "email"),
        ({"phone": "+5511987654321"}, "phone"),
        ({"cpf_cnpj": "52998224725"}, "cpf_cnpj"),
    ],
)
async def test_duplicate_field_is_named(pool, clash, field) -> None:
    """A second profile sharing one field is refused with that field named."""
    async with pool.connection() as conn:
        await db_profiles.insert_profile(conn, **_profile())
    other = _profile(email="outra@example.com", phone="+5521987654321", cpf_cnpj="11222333000181")
    async with pool.connection() as conn:
        with pytest.raises(db_profiles.DuplicateProfile) as duplicate:
            await db_profiles.insert_profile(conn, **(other | clash))
    assert duplicate.value.field == field


async def test_retried_insert_returns_the_same_profile(pool) -> None:
    """Inserting the same auth user's profile twice returns the first row (a retried step)."""
    values = _profile()
    async with pool.connection() as conn:
        first = await db_profiles.insert_profile(conn, **values)
        again = await db_profiles.insert_profile(conn, **values)
    assert again.profile_id == first.profile_id


async def test_concurrent_inserts_of_one_email_leave_one_profile(pool) -> None:
    """Ten concurrent inserts with one e-mail: exactly one wins, nine are told `email`."""

    async def insert(n: int) -> str:
        async with pool.connection() as conn:
            try:
                await db_profiles.insert_profile(
                    conn,
                    **_profile(phone=f"+55119876543{n:02d}", cpf_cnpj=f"cpf-{n}"),
                )
            except db_profiles.DuplicateProfile as exc:
                return exc.field
            return "created"

    outcomes = await asyncio.gather(*(insert(n) for n in range(10)))
    assert sorted(outcomes) == ["created"] + ["email"] * 9
    async with pool.connection() as conn:
        assert len(await db_profiles.list_profiles(conn)) == 1


async def test_one_checkout_attempt_in_flight(pool) -> None:
    """Attempts are numbered 1, 2, ...; a second one while the first runs is refused."""
    async with pool.connection() as conn:
        profile = await db_profiles.insert_profile(conn, **_profile())
        first = await db_profiles.start_checkout_attempt(conn, profile.profile_id, "basic")
        with pytest.raises(db_profiles.CheckoutInProgress):
            await db_profiles.start_checkout_attempt(conn, profile.profile_id, "basic")
        await db_profiles.finish_checkout_attempt(conn, first.workflow_id, "completed")
        second = await db_profiles.start_checkout_attempt(conn, profile.profile_id, "basic")
    assert first.workflow_id == f"checkout:{profile.profile_id}:1"
    assert second.attempt == 2
