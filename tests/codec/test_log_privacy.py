"""Log lines carry no personal data: the Supabase look-up's URL holds the e-mail, and httpx
would log it at INFO."""

from __future__ import annotations

import logging

import httpx

from providers.clients import open_provider_clients
from tests.conftest import make_settings


async def test_supabase_lookup_logs_no_email(caplog) -> None:
    """With every logger at INFO, finding a user by e-mail writes no line holding the e-mail."""
    settings = make_settings(supabase_url="http://supabase.test")
    caplog.set_level(logging.INFO)
    async with open_provider_clients(settings) as providers:
        providers.supabase._http._transport = httpx.MockTransport(
            lambda request: httpx.Response(200, json={"users": []})
        )
        assert await providers.supabase.find_user_by_email("ana.souza@example.com") is None
    assert "ana.souza" not in caplog.text
