"""Registration and checkout are rate limited per client address, per e-mail and per user,
with counters in PostgreSQL shared by every API process: 429 `rate_limited` with Retry-After."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool

from api.app import create_app
from tests.conftest import make_settings
from tests.credits.conftest import Ledger
from tests.sagas.conftest import person

pytestmark = pytest.mark.db

# Temporal is unreachable on purpose: a request that passes the limits answers 503 at once,
# so the test needs no saga to run.
NO_TEMPORAL = "127.0.0.1:1"


@pytest.fixture
async def two_apis(
    pool: AsyncConnectionPool, database_url: str
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Two API processes' apps over the same database, with small limits."""
    settings = make_settings(
        database_url=database_url,
        temporal_address=NO_TEMPORAL,
        registration_rate_per_address=4,
        registration_rate_per_email=2,
        checkout_rate_per_address=100,
        checkout_rate_per_user=2,
    )
    async with AsyncExitStack() as stack:
        clients = []
        for _ in range(2):
            app = create_app(settings, pool=pool)
            await stack.enter_async_context(app.router.lifespan_context(app))
            clients.append(
                await stack.enter_async_context(
                    httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://a")
                )
            )
        yield clients


def _limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(response.headers["Retry-After"]) <= 600


async def test_registration_is_limited_per_email_across_processes(
    two_apis: list[httpx.AsyncClient],
) -> None:
    """The third registration of one e-mail within the window is 429, whichever process gets
    it; another e-mail is not affected."""
    first, second = two_apis
    assert (await first.post("/api/v1/profiles/register", json=person(0))).status_code == 503
    assert (await second.post("/api/v1/profiles/register", json=person(0))).status_code == 503
    _limited(await first.post("/api/v1/profiles/register", json=person(0)))
    assert (await second.post("/api/v1/profiles/register", json=person(1))).status_code == 503


async def test_registration_is_limited_per_address(two_apis: list[httpx.AsyncClient]) -> None:
    """From one address, the fifth registration (of different e-mails) is 429."""
    for n in range(4):
        response = await two_apis[n % 2].post("/api/v1/profiles/register", json=person(n))
        assert response.status_code == 503, response.text
    _limited(await two_apis[0].post("/api/v1/profiles/register", json=person(4)))


async def test_checkout_is_limited_per_user(
    two_apis: list[httpx.AsyncClient], pool: AsyncConnectionPool
) -> None:
    """A user's third checkout within the window is 429; another user still gets through."""
    ledger = Ledger(pool)
    user, other = await ledger.customer(), await ledger.customer()
    body = {"plan_id": "basic", "billing_type": "PIX"}
    for api in two_apis:
        response = await api.post("/api/v1/checkout/create", json=body, headers=user.headers())
        assert response.status_code == 503, response.text
    _limited(await two_apis[0].post("/api/v1/checkout/create", json=body, headers=user.headers()))
    response = await two_apis[1].post("/api/v1/checkout/create", json=body, headers=other.headers())
    assert response.status_code == 503, response.text


async def test_invalid_requests_do_not_count(two_apis: list[httpx.AsyncClient]) -> None:
    """A 422 is answered before the limits: typos do not lock a person out."""
    for _ in range(5):
        bad = await two_apis[0].post("/api/v1/profiles/register", json=person(0, cpfCnpj="1"))
        assert bad.status_code == 422
    assert (await two_apis[0].post("/api/v1/profiles/register", json=person(0))).status_code == 503
