"""Credit grants, from the API or the CLI, are recorded with who granted them."""

from __future__ import annotations

import pytest
from psycopg_pool import AsyncConnectionPool

from db import operations
from settings import Settings
from tests.conftest import TEST_SECRETS
from tests.credits.conftest import Ledger, entrega
from tests.support import serve

pytestmark = [pytest.mark.db]


async def test_grants_name_who_granted(
    clean_db: str, pool: AsyncConnectionPool, settings: Settings
) -> None:
    """An API grant names the operator's credential; a CLI grant names ENTREGA_OPERATOR's user."""
    import httpx

    from api.app import create_app
    from tests.conftest import make_settings

    customer = await Ledger(pool).customer()
    app_settings = make_settings(database_url=clean_db, admin_tokens="dora:token-da-dora-123456")
    async with (
        serve(create_app(app_settings, pool=pool)) as url,
        httpx.AsyncClient(base_url=url) as api,
    ):
        granted = await api.post(
            "/api/v1/admin/credit-purchases",
            json={"profile_id": str(customer.profile_id), "credits_amount": 3},
            headers={"Authorization": "Bearer token-da-dora-123456"},
        )
        assert granted.status_code == 201, granted.text
        anonymous = await api.post(
            "/api/v1/admin/credit-purchases",
            json={"profile_id": str(customer.profile_id), "credits_amount": 3},
            headers={"Authorization": f"Bearer {TEST_SECRETS['admin_token']}x"},
        )
        assert anonymous.status_code == 401
    cli = await entrega(clean_db, "credits", "grant", str(customer.profile_id), "2")
    assert cli.exit_code == 0, cli.output
    async with pool.connection() as conn:
        actions = await operations.actions_on(conn, str(customer.profile_id))
    first = actions[0]
    assert (first.action, first.actor, first.via, first.details["credits_amount"]) == (
        "grant",
        "dora",
        "api",
        3,
    )
    assert actions[1].via == "cli" and actions[1].actor  # the OS user running the tests
