"""A worker process killed with SIGKILL mid-saga: another worker finishes the compensation."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid

import pytest

from activities.accounts import seal_password
from contracts.signups import RegistrationInput
from tests.conftest import TEST_SECRETS, make_settings, sandbox_urls
from worker import build_worker
from workflows.registration import RegistrationWorkflow

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox]


def _worker_process(database_url: str, temporal_address: str, task_queue: str, sandbox_url: str):
    env = {
        **os.environ,
        **{name.upper(): value for name, value in TEST_SECRETS.items()},
        **{name.upper(): value for name, value in sandbox_urls(sandbox_url).items()},
        "ENTREGA_ENV": "test",
        "DATABASE_URL": database_url,
        "TEMPORAL_ADDRESS": temporal_address,
        "TEMPORAL_TASK_QUEUE": task_queue,
    }
    return subprocess.Popen(
        [sys.executable, "worker.py"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _fault_fired(sandbox, failure: str) -> None:
    """Wait (up to 20 s) until the sandbox's first fault has fired; fail with `failure`."""
    for _ in range(400):
        faults = (await sandbox.http.get("/_sandbox/faults")).json()
        if faults and faults[0]["fired"] >= 1:
            return
        await asyncio.sleep(0.05)
    pytest.fail(failure)


async def test_killed_worker_mid_compensation(
    stack, pool, sandbox, temporal_client, task_queue, database_url, db_fault
) -> None:
    """The profile step fails and Supabase refuses deletions for a while; the worker process
    running the saga is SIGKILLed while the compensation backs off; a new worker finishes it."""
    # `stack` runs an in-process worker on task_queue; this test needs its own queue and workers.
    queue = f"{task_queue}-killed"
    await db_fault("profiles", "auth_user_id")
    await sandbox.fault("supabase", "delete_user", status=503, times=2)
    address = temporal_client.service_client.config.target_host
    process = _worker_process(database_url, address, queue, sandbox.url)
    try:
        settings = make_settings(database_url=database_url, **sandbox_urls(sandbox.url))
        workflow_id = f"registration:killed-{uuid.uuid4().hex[:8]}"
        handle = await temporal_client.start_workflow(
            RegistrationWorkflow.run,
            RegistrationInput(
                name="Kill Test",
                email="killed@example.com",
                phone="+5511987654399",
                cpf_cnpj="52998224725",
                sealed_password=seal_password(settings, "segredo123"),
            ),
            id=workflow_id,
            task_queue=queue,
        )
        # Kill once the first deletion has been refused: the compensation is backing off.
        await _fault_fired(sandbox, "the saga never reached its compensation")
        assert len((await sandbox.state())["auth_users"]) == 1
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()

    async with build_worker(temporal_client, settings, pool, stack.providers, task_queue=queue):
        with pytest.raises(Exception, match="Workflow execution failed"):
            await asyncio.wait_for(handle.result(), 60)
    assert (await sandbox.state())["auth_users"] == []
    assert await stack.profiles() == []
    assert await stack.orphans() == []


async def test_killed_worker_mid_step(
    stack, pool, sandbox, temporal_client, task_queue, database_url
) -> None:
    """The worker process dies while Supabase is still creating the auth user; after the workflow
    task times out a new worker runs the step again, recognizes the user the dead one created,
    and finishes the registration: one user, one profile, no orphan."""
    queue = f"{task_queue}-killed-step"
    await sandbox.fault("supabase", "create_user", latency_ms=1500, times=1)
    address = temporal_client.service_client.config.target_host
    process = _worker_process(database_url, address, queue, sandbox.url)
    settings = make_settings(database_url=database_url, **sandbox_urls(sandbox.url))
    try:
        handle = await temporal_client.start_workflow(
            RegistrationWorkflow.run,
            RegistrationInput(
                name="Kill Test",
                email="killed-step@example.com",
                phone="+5511987654398",
                cpf_cnpj="52998224725",
                sealed_password=seal_password(settings, "segredo123"),
            ),
            id=f"registration:killed-step-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
        )
        await _fault_fired(sandbox, "the worker never called Supabase")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()

    # Supabase finishes the dead worker's call: the user exists before the new worker starts.
    for _ in range(100):
        if (await sandbox.state())["auth_users"]:
            break
        await asyncio.sleep(0.05)
    assert len((await sandbox.state())["auth_users"]) == 1

    async with build_worker(temporal_client, settings, pool, stack.providers, task_queue=queue):
        result = await asyncio.wait_for(handle.result(), 60)
    [user] = (await sandbox.state())["auth_users"]
    assert user["id"] == str(result.auth_user_id)
    assert [p["profile_id"] for p in await stack.profiles()] == [str(result.profile_id)]
    assert await stack.orphans() == []
