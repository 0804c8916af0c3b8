"""Registration workflow ids carry no e-mail (a keyed hash of it), yet duplicates still meet, runs
started under the old `registration:<e-mail>` id are still waited on, and operators still find a
registration by e-mail."""

from __future__ import annotations

import asyncio

import pytest

from activities.accounts import seal_password
from contracts.signups import legacy_registration_workflow_id as legacy_workflow_id
from contracts.signups import registration_workflow_id as workflow_id
from tests.conftest import TEST_SECRETS, make_settings
from tests.privacy import LEGACY_RUNS
from tests.sagas.conftest import person, registration_id, registration_input, run_cli
from workflows.registration import RegistrationWorkflow

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox]

KEY = TEST_SECRETS["registration_id_key"]


def test_id_is_a_keyed_hash_of_the_email() -> None:
    """Stable for one e-mail, different for another e-mail or another key, and no e-mail in it."""
    first = workflow_id("ana@example.com", KEY)
    assert first == workflow_id("ana@example.com", KEY)
    assert first != workflow_id("bia@example.com", KEY)
    assert first != workflow_id("ana@example.com", "another-key")
    assert first.startswith("registration:")
    assert "ana" not in first
    assert "@" not in first


async def test_api_starts_the_registration_under_the_hashed_id(stack) -> None:
    """The API's saga runs as registration:<hash>; nothing runs under the e-mail."""
    await stack.registered(0)
    ids = [
        wf.id async for wf in stack.temporal.list_workflows("WorkflowType = 'RegistrationWorkflow'")
    ]
    assert registration_id(0) in ids
    assert not [i for i in ids if "@" in i]


async def _start_legacy_run(stack, n: int):
    data = person(n)
    settings = make_settings()
    LEGACY_RUNS.add(legacy_workflow_id(data["email"]))  # personal data in its id, on purpose
    return await stack.temporal.start_workflow(
        RegistrationWorkflow.run,
        registration_input(data, seal_password(settings, data["password"])),
        id=legacy_workflow_id(data["email"]),
        task_queue=stack.app.state.settings.temporal_task_queue,
    )


async def test_running_legacy_registration_decides_a_new_one(stack) -> None:
    """While a run under the old id is still creating the user, a registration of the same e-mail
    waits for it and answers 409 email_exists: one user, one profile, not two sagas racing."""
    await stack.sandbox.fault("supabase", "create_user", latency_ms=1500, times=1)
    legacy = await _start_legacy_run(stack, 0)
    await asyncio.sleep(0.3)  # the legacy run is inside its slow create_user
    response = await stack.register(0)
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "email_exists"
    await legacy.result()
    assert len((await stack.sandbox.state())["auth_users"]) == 1
    assert len(await stack.profiles()) == 1


async def test_sagas_list_and_retry_find_a_registration_by_email(stack, temporal_client) -> None:
    """`sagas list --email` finds both the hashed and a legacy run; `sagas retry
    registration:<e-mail>` reaches the hashed run when no legacy one exists."""
    await stack.registered(3)
    await (await _start_legacy_run(stack, 4)).result()
    env = {"TEMPORAL_ADDRESS": temporal_client.service_client.config.target_host}
    _, hashed = await run_cli("sagas", "list", "--email", "Pessoa3@Example.com", "--json", **env)
    _, legacy = await run_cli("sagas", "list", "--email", "pessoa4@example.com", "--json", **env)
    assert registration_id(3) in hashed
    assert "pessoa3" not in hashed
    assert legacy_workflow_id("pessoa4@example.com") in legacy
    code, out = await run_cli("sagas", "retry", "registration:pessoa3@example.com", **env)
    assert code == 1
    assert f"{registration_id(3)}: not parked: already completed" in out
