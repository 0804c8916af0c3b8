"""Every emulated endpoint checks its credential like the real service, in its own shape."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import SandboxHandle

pytestmark = pytest.mark.sandbox

UA = {"User-Agent": "Entrega"}

# (method, path, headers with a wrong credential, expected status, a key of the error body)
CASES: list[tuple[str, str, dict[str, str], int, str]] = [
    ("GET", "/mercadopago/v1/payments/1", {"Authorization": "Bearer nope"}, 401, "error"),
    ("GET", "/mercadopago/v1/payments/1", {}, 401, "error"),
    ("GET", "/asaas/v3/customers", {"access_token": "nope", **UA}, 401, "errors"),
    ("POST", "/asaas/v3/customers", {**UA}, 401, "errors"),
    ("DELETE", "/asaas/v3/subscriptions/sub_1", {"access_token": "nope", **UA}, 401, "errors"),
    ("GET", "/supabase/auth/v1/admin/users", {"apikey": "nope"}, 401, "message"),
    (
        "POST",
        "/supabase/auth/v1/admin/users",
        {"apikey": "test-supabase-service-key", "Authorization": "Bearer user-jwt"},
        403,
        "error_code",
    ),
    ("POST", "/supabase/auth/v1/token?grant_type=password", {}, 401, "message"),
    ("POST", "/lovable/create-user", {"Authorization": "Bearer nope"}, 401, "error"),
    ("POST", "/lovable/deactivate-user", {}, 401, "error"),
    ("POST", "/resend/emails", {}, 401, "name"),
    ("POST", "/resend/emails", {"Authorization": "Bearer re_wrong"}, 403, "name"),
]


@pytest.mark.parametrize(("method", "path", "headers", "status", "field"), CASES)
async def test_wrong_or_missing_credential_is_refused(
    sandbox: SandboxHandle,
    method: str,
    path: str,
    headers: dict[str, str],
    status: int,
    field: str,
) -> None:
    """A missing or wrong key is refused before anything happens."""
    response = await sandbox.http.request(method, path, headers=headers, json={})
    body: dict[str, Any] = response.json()
    assert response.status_code == status
    assert field in body


async def test_asaas_requires_a_user_agent(sandbox: SandboxHandle) -> None:
    """Asaas refuses a request without User-Agent even with the right key."""
    response = await sandbox.http.get(
        "/asaas/v3/customers", headers={"access_token": "test-asaas-api-key", "User-Agent": ""}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "invalid_user_agent"
