"""`entrega reconcile` finds orphans in every direction and exits 1 when there are any."""

from __future__ import annotations

import json

import pytest

from tests.sagas.conftest import cli_env, run_cli

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox]


async def test_reconcile_exits_0_when_everything_matches(stack, database_url, temporal_client):
    """A registered and subscribed account has no orphans: exit 0."""
    account = await stack.registered(0)
    assert (await stack.checkout(account["auth_user_id"])).status_code == 201
    env = cli_env(
        database_url, stack.sandbox.url, temporal_client.service_client.config.target_host
    )
    code, output = await run_cli("reconcile", **env)
    assert (code, output.strip()) == (0, "no orphans")


async def test_reconcile_lists_orphans_both_ways(stack, pool, database_url, temporal_client):
    """A profile removed behind the sagas' back leaves its auth user and Asaas customer orphaned;
    an auth user removed leaves its profile orphaned; exit 1 with every one listed."""
    first = await stack.registered(0)
    first_checkout = (await stack.checkout(first["auth_user_id"])).json()
    second = await stack.registered(1)
    async with pool.connection() as conn:
        await conn.execute("DELETE FROM profiles WHERE profile_id = %s", (first["profile_id"],))
    await stack.providers.supabase.delete_user(second["auth_user_id"])

    env = cli_env(
        database_url, stack.sandbox.url, temporal_client.service_client.config.target_host
    )
    code, output = await run_cli("reconcile", "--json", **env)
    assert code == 1
    found = {(o["kind"], o["id"]) for o in json.loads(output)}
    assert found == {
        ("auth_user_without_profile", first["auth_user_id"]),
        ("asaas_customer_without_profile", first_checkout["asaas_customer_id"]),
        ("profile_without_auth_user", second["profile_id"]),
    }
