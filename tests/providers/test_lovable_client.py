"""LovableClient: Idempotency-Key on create, created flag on replays, idempotent deactivation."""

from __future__ import annotations

import json

import pytest

from providers.errors import PermanentError
from providers.lovable import LovableClient
from tests.providers.calls import SECRET
from tests.providers.conftest import Script


async def test_create_then_replay_report_created_truthfully(script: Script) -> None:
    """201 means created now; 200 means the e-mail already had a user."""
    script.answer(201, json={"user_id": "u1", "created": True})
    script.answer(200, json={"user_id": "u1", "created": False})
    async with script.client() as http:
        lovable = LovableClient(http, SECRET)
        first = await lovable.create_user("a@x.com", "pw-123456", "Ana", "ord-1", "wf:user")
        again = await lovable.create_user("a@x.com", "pw-123456", "Ana", "ord-1", "wf:user")
    assert (first.created, again.created, again.user_id) == (True, False, "u1")
    request = script.requests[0]
    assert request.headers["idempotency-key"] == "wf:user"
    assert request.headers["authorization"] == f"Bearer {SECRET}"
    assert json.loads(request.content) == {
        "email": "a@x.com",
        "password": "pw-123456",
        "full_name": "Ana",
        "order_id": "ord-1",
    }


async def test_invalid_body_is_permanent_with_the_apps_code(script: Script) -> None:
    """A 422 from the function is permanent and keeps its error code."""
    script.answer(422, json={"error": "invalid_body", "message": "email is invalid"})
    async with script.client() as http:
        with pytest.raises(PermanentError) as raised:
            await LovableClient(http, SECRET).create_user("x", "pw", "A", "o", "k")
    assert (raised.value.code, raised.value.message) == ("invalid_body", "email is invalid")


async def test_deactivating_an_unknown_user_is_done(script: Script) -> None:
    """404 on deactivate counts as success, so a revocation can be retried safely."""
    script.answer(404, json={"error": "user_not_found", "message": "No user"})
    async with script.client() as http:
        await LovableClient(http, SECRET).deactivate_user("u-gone")
    assert json.loads(script.requests[0].content) == {"user_id": "u-gone"}
