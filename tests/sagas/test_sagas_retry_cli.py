"""`entrega sagas retry` explains, per id, why a saga could not be retried, instead of crashing."""

from __future__ import annotations

import pytest

from tests.sagas.conftest import registration_id, run_cli

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
