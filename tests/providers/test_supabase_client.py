"""SupabaseAuthClient: duplicates are conflicts, look-ups are exact, deletes are idempotent."""

from __future__ import annotations

import json

import httpx
import pytest

from providers.errors import ConflictError, NotFoundError, PermanentError
from providers.supabase import PAGE_SIZE, SupabaseAuthClient
from tests.providers.calls import SECRET
from tests.providers.conftest import Script


def client(http: httpx.AsyncClient) -> SupabaseAuthClient:
    return SupabaseAuthClient(http, SECRET)


def user(n: int, email: str) -> dict[str, object]:
    return {"id": f"00000000-0000-0000-0000-{n:012d}", "email": email, "phone": ""}


@pytest.mark.parametrize("code", ["email_exists", "phone_exists"])
async def test_duplicate_is_a_conflict_with_its_code(script: Script, code: str) -> None:
    """GoTrue's 422 email_exists / phone_exists becomes a ConflictError keeping the code."""
    script.answer(422, json={"code": 422, "error_code": code, "msg": "already registered"})
    async with script.client() as http:
        with pytest.raises(ConflictError) as raised:
            await client(http).create_user("ana@example.com", "5511987654321", "s3cret-pass")
    assert (raised.value.code, raised.value.status) == (code, 422)


async def test_other_422_stays_permanent_not_conflict(script: Script) -> None:
    """A weak password (also 422) is invalid data, not a duplicate."""
    script.answer(422, json={"code": 422, "error_code": "weak_password", "msg": "too short"})
    async with script.client() as http:
        with pytest.raises(PermanentError) as raised:
            await client(http).create_user("ana@example.com", None, "x")
    assert not isinstance(raised.value, ConflictError)


async def test_create_user_sends_admin_headers_and_confirms(script: Script) -> None:
    """The service key goes in apikey and Authorization; the user is created confirmed."""
    script.answer(200, json=user(1, "ana@example.com"))
    async with script.client() as http:
        made = await client(http).create_user("ana@example.com", None, "s3cret-pass", {"n": 1})
    request = script.requests[0]
    assert request.headers["apikey"] == SECRET
    assert request.headers["authorization"] == f"Bearer {SECRET}"
    assert json.loads(request.content) == {
        "email": "ana@example.com",
        "password": "s3cret-pass",
        "email_confirm": True,
        "user_metadata": {"n": 1},
    }
    assert made.email == "ana@example.com"


async def test_find_by_email_is_exact_despite_substring_filter(script: Script) -> None:
    """Among the filter's substring matches, only the exact (case-insensitive) e-mail counts."""
    script.answer(200, json={"users": [user(1, "xana@example.com"), user(2, "ana@example.com")]})
    async with script.client() as http:
        found = await client(http).find_user_by_email("Ana@Example.com")
    assert found is not None and found.id.endswith("2")
    assert script.requests[0].url.params["filter"] == "ana@example.com"


async def test_find_by_email_answers_none_when_only_similar_exist(script: Script) -> None:
    """A substring match alone is not a hit."""
    script.answer(200, json={"users": [user(1, "ana@example.com.br")]})
    async with script.client() as http:
        assert await client(http).find_user_by_email("ana@example.com") is None


async def test_list_users_reads_until_a_short_page(script: Script) -> None:
    """list_users asks page after page until one comes back short."""
    full = [user(n, f"u{n}@x.com") for n in range(PAGE_SIZE)]
    script.answer(200, json={"users": full}).answer(200, json={"users": [user(9999, "z@x.com")]})
    async with script.client() as http:
        users = await client(http).list_users()
    assert len(users) == PAGE_SIZE + 1
    assert [r.url.params["page"] for r in script.requests] == ["1", "2"]


async def test_delete_unknown_user_is_done(script: Script) -> None:
    """404 user_not_found on delete counts as success (already gone)."""
    script.answer(404, json={"code": 404, "error_code": "user_not_found", "msg": "User not found"})
    async with script.client() as http:
        await client(http).delete_user("00000000-0000-0000-0000-000000000001")


async def test_sign_in_answers_the_access_token(script: Script) -> None:
    """The password grant's access_token is returned; bad credentials are permanent."""
    script.answer(200, json={"access_token": "jwt", "token_type": "bearer"})
    script.answer(400, json={"code": 400, "error_code": "invalid_credentials", "msg": "Invalid"})
    async with script.client() as http:
        assert await client(http).sign_in_with_password("a@x.com", "pw") == "jwt"
        with pytest.raises(PermanentError) as raised:
            await client(http).sign_in_with_password("a@x.com", "wrong")
    assert raised.value.code == "invalid_credentials"
    assert script.requests[0].url.params["grant_type"] == "password"
    assert not isinstance(raised.value, NotFoundError)
