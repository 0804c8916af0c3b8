"""The sandbox's logins take any password the API accepts, accents included."""

from __future__ import annotations

import pytest

from tests.conftest import TEST_SECRETS
from tests.support import SandboxHandle

pytestmark = pytest.mark.sandbox

KEY = TEST_SECRETS["supabase_service_key"]
SUPABASE = {"apikey": KEY, "Authorization": f"Bearer {KEY}"}
PASSWORD = "Senha-ção-123"  # the API's rule allows it: 8+ characters, a letter and a digit


async def test_supabase_login_with_an_accented_password(sandbox: SandboxHandle) -> None:
    """The right accented password signs in, a wrong accented one is refused with 400, and
    neither is a 500 (comparing non-ASCII str in constant time raised TypeError)."""
    created = await sandbox.http.post(
        "/supabase/auth/v1/admin/users",
        json={"email": "acento@example.com", "password": PASSWORD, "email_confirm": True},
        headers=SUPABASE,
    )
    assert created.status_code == 200, created.text
    login = "/supabase/auth/v1/token?grant_type=password"
    right = await sandbox.http.post(
        login, json={"email": "acento@example.com", "password": PASSWORD}, headers={"apikey": KEY}
    )
    assert right.status_code == 200, right.text
    wrong = await sandbox.http.post(
        login,
        json={"email": "acento@example.com", "password": "Senha-çãx-123"},
        headers={"apikey": KEY},
    )
    assert wrong.status_code == 400, wrong.text


async def test_lovable_login_with_an_accented_password(sandbox: SandboxHandle) -> None:
    """The Lovable app's login check refuses a wrong accented password with 401, not a 500."""
    created = await sandbox.http.post(
        "/lovable/create-user",
        json={
            "email": "acento@example.com",
            "password": "pw-123456",
            "full_name": "Ana",
            "order_id": "o1",
        },
        headers={
            "Authorization": f"Bearer {TEST_SECRETS['lovable_service_key']}",
            "Idempotency-Key": "k1",
        },
    )
    assert created.status_code in (200, 201), created.text
    wrong = await sandbox.http.post(
        "/_sandbox/lovable/login", json={"email": "acento@example.com", "password": "çççççççç1"}
    )
    assert wrong.status_code == 401, wrong.text
