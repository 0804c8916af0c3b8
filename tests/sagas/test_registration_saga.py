"""Registration end to end: the sandbox's Supabase, the database and Temporal, with faults."""

from __future__ import annotations

import pytest

from tests.sagas.conftest import registration_id

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox]


async def test_registration_creates_user_and_profile(stack) -> None:
    """201 with ids that match one auth user and one profile; no orphans; journal complete."""
    body = await stack.registered(0)
    state = await stack.sandbox.state()
    assert [u["id"] for u in state["auth_users"]] == [body["auth_user_id"]]
    profiles = await stack.profiles()
    assert [(p["profile_id"], p["auth_user_id"]) for p in profiles] == [
        (body["profile_id"], body["auth_user_id"])
    ]
    assert profiles[0]["email"] == "pessoa0@example.com"
    assert await stack.orphans() == []
    assert await stack.journal(registration_id(0)) == [
        ("step_completed", "auth_user"),
        ("step_completed", "profile"),
    ]
