"""Checkout's 503s tell the client to come back later without exposing Temporal's internals."""

from __future__ import annotations

import uuid

import httpx
import pytest

from api.app import create_app
from tests.conftest import TEST_SECRETS, make_settings, sandbox_urls
from tests.support import app_client, free_port, user_token

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox]


async def _checkout(app, auth_user_id: str) -> httpx.Response:
    token = user_token(TEST_SECRETS["supabase_jwt_secret"], auth_user_id)
    async with app_client(app) as api:
        return await api.post(
            "/api/v1/checkout/create",
            json={"plan_id": "basic", "billing_type": "PIX"},
            headers={"Authorization": f"Bearer {token}"},
        )


async def test_temporal_down_hides_the_connection_error(settings, pool) -> None:
    """Temporal unreachable: 503 temporal_unavailable with null details (no address, no
    transport text)."""
    port = free_port()
    app = create_app(
        settings.model_copy(update={"temporal_address": f"127.0.0.1:{port}"}), pool=pool
    )
    response = await _checkout(app, str(uuid.uuid4()))
    assert response.status_code == 503
    error = response.json()["error"]
    assert (error["code"], error["details"]) == ("temporal_unavailable", None)
    assert str(port) not in response.text and "transport" not in response.text.lower()


async def test_pending_checkout_answers_only_its_attempt(
    stack, pool, sandbox, temporal_client, database_url
) -> None:
    """A saga slower than people wait: 503 checkout_pending whose details name only the attempt."""
    account = await stack.registered(0)
    settings = make_settings(
        database_url=database_url,
        temporal_task_queue=f"nobody-polls-{uuid.uuid4()}",  # the saga never gets to run
        signup_answer_timeout_seconds=0.3,
        **sandbox_urls(sandbox.url),
    )
    app = create_app(settings, pool=pool, temporal=temporal_client)
    response = await _checkout(app, account["auth_user_id"])
    workflow_id = f"checkout:{account['profile_id']}:1"
    await temporal_client.get_workflow_handle(workflow_id).terminate()
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert (error["code"], error["details"]) == ("checkout_pending", {"workflow_id": workflow_id})
