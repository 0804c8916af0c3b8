"""Every user endpoint refuses a token that is not a valid, signed-in Supabase user's token."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from psycopg_pool import AsyncConnectionPool

from api.app import ROUTERS, create_app
from api.auth import current_user
from settings import Settings
from tests.conftest import TEST_SECRETS
from tests.credits.conftest import SHIPMENT, Ledger
from tests.support import app_client

pytestmark = pytest.mark.db

# A body each route would accept, so only the token decides; a route added later gets `{}`.
_BODIES: dict[str, dict[str, Any]] = {
    "/api/v1/shipments": SHIPMENT,
    "/api/v1/checkout/create": {"plan_id": "basic", "billing_type": "PIX"},
}


def _calls(dependant: Dependant) -> set[Any]:
    """Every callable a route depends on, however deep."""
    found = {dependant.call}
    for sub in dependant.dependencies:
        found |= _calls(sub)
    return found


def _user_routes() -> list[tuple[str, str]]:
    """(method, path) of every route that authenticates a user, found in the app itself."""
    found = []
    for route in (route for router in ROUTERS for route in router.routes):
        if isinstance(route, APIRoute) and current_user in _calls(route.dependant):
            found.extend((method, route.path) for method in sorted(route.methods))
    return found


USER_ROUTES = _user_routes()


def _token(sub: uuid.UUID, **claims: Any) -> str:
    now = int(time.time())
    values: dict[str, Any] = {
        "sub": str(sub),
        "aud": "authenticated",
        "role": "authenticated",
        "iat": now,
        "exp": now + 3600,
    }
    secret = claims.pop("secret", TEST_SECRETS["supabase_jwt_secret"])
    values.update(claims)
    return jwt.encode({k: v for k, v in values.items() if v is not None}, secret, "HS256")


BAD_TOKENS = {
    "other_secret": {"secret": "another-project-secret-that-is-32-bytes-long"},
    "expired": {"iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600},
    "wrong_audience": {"aud": "someone-else"},
    "role_anon": {"role": "anon"},
    "role_service": {"role": "service_role"},
    "no_role": {"role": None},
}


@pytest.fixture
async def api(pool: AsyncConnectionPool, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, pool=pool)
    async with app_client(app) as client:
        yield client


def test_the_user_routes_are_found() -> None:
    """The route discovery sees the known user endpoints (so the matrix below is not empty)."""
    assert {path for _, path in USER_ROUTES} >= {
        "/api/v1/shipments",
        "/api/v1/credits",
        "/api/v1/checkout/create",
    }


@pytest.mark.parametrize(("method", "path"), USER_ROUTES)
@pytest.mark.parametrize("kind", BAD_TOKENS)
async def test_bad_token_for_a_real_user_is_refused(
    api: httpx.AsyncClient, pool: AsyncConnectionPool, method: str, path: str, kind: str
) -> None:
    """A token naming a real user's `sub` but signed with another secret, expired, for another
    audience or without `role: authenticated` gets 401 on every user endpoint."""
    customer = await Ledger(pool).customer()
    token = _token(customer.auth_user_id, **BAD_TOKENS[kind])
    response = await api.request(
        method,
        path,
        json=_BODIES.get(path, {}) if method != "GET" else None,
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(("method", "path"), [r for r in USER_ROUTES if r[0] == "GET"])
async def test_the_same_real_user_with_a_good_token_gets_in(
    api: httpx.AsyncClient, pool: AsyncConnectionPool, method: str, path: str
) -> None:
    """The control: the same claims, properly signed, are accepted."""
    customer = await Ledger(pool).customer()
    response = await api.request(
        method, path, headers={"Authorization": f"Bearer {_token(customer.auth_user_id)}"}
    )
    assert response.status_code == 200, response.text
