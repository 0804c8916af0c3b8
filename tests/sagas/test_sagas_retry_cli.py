"""`entrega sagas retry` explains, per id, why a saga could not be retried, instead of crashing."""

from __future__ import annotations

import pytest

from tests.sagas.conftest import registration_id, run_cli, run_cli_capturing
from tests.support import free_port

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox]


async def test_retry_reports_unknown_and_finished_sagas(stack, temporal_client) -> None:
    """An unknown id and a completed saga each get a one-line reason, both are reported (the
    first does not stop the second), and the exit code is 1."""
    await stack.registered(0)
    env = {"TEMPORAL_ADDRESS": temporal_client.service_client.config.target_host}
    code, out = await run_cli("sagas", "retry", "registration:nobody", registration_id(0), **env)
    assert code == 1, out
    assert "Traceback" not in out
    assert "registration:nobody: no such saga" in out
    assert f"{registration_id(0)}: not parked: already completed" in out


async def test_retry_by_stage_with_nothing_parked_says_so(temporal_client) -> None:
    """`--stage compensation_failed` with no parked saga says there is none and exits 0."""
    env = {"TEMPORAL_ADDRESS": temporal_client.service_client.config.target_host}
    code, out = await run_cli("sagas", "retry", "--stage", "compensation_failed", **env)
    assert (code, out.strip()) == (0, "no saga in stage compensation_failed")


@pytest.mark.parametrize("command", [["retry", "registration:x"], ["list"]])
async def test_temporal_unreachable_is_one_line(command) -> None:
    """With Temporal down, `sagas list` and `sagas retry` say where they could not connect, in
    one line, and exit 1."""
    address = f"127.0.0.1:{free_port()}"
    code, _, err = await run_cli_capturing("sagas", *command, TEMPORAL_ADDRESS=address)
    assert code == 1
    assert "Traceback" not in err
    assert err.strip() == f"cannot reach Temporal at {address}"
