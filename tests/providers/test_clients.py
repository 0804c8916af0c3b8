"""open_provider_clients builds one configured client per service and closes them on exit."""

from __future__ import annotations

import pytest

from providers.clients import open_provider_clients
from providers.errors import TransientError
from tests.conftest import TEST_SECRETS, make_settings


async def test_clients_use_the_configured_urls_and_timeouts() -> None:
    """Each client gets its service's base URL and the configured timeout."""
    settings = make_settings(
        asaas_api_url="https://asaas.test/v3",
        supabase_url="https://project.supabase.test",
        lovable_functions_url="https://app.test/functions/v1",
        http_timeout_seconds=3.5,
    )
    async with open_provider_clients(settings) as clients:
        bases = {
            name: str(getattr(clients, name)._http.base_url)
            for name in ("mercadopago", "asaas", "supabase", "lovable", "resend")
        }
        assert clients.asaas._http.timeout.read == 3.5
    assert bases == {
        "mercadopago": "https://api.mercadopago.com",
        "asaas": "https://asaas.test/v3/",
        "supabase": "https://project.supabase.test",
        "lovable": "https://app.test/functions/v1/",
        "resend": "https://api.resend.com",
    }
    assert clients.asaas._http.is_closed


async def test_reprs_show_no_secret() -> None:
    """Printing the clients (in a log line, a debugger) never shows a key."""
    async with open_provider_clients(make_settings()) as clients:
        text = repr(clients) + str(clients)
    for secret in TEST_SECRETS.values():
        assert secret not in text


async def test_unconfigured_service_fails_fast_without_going_anywhere() -> None:
    """A service with no URL (dev/test only) fails with a connection error naming the gap."""
    async with open_provider_clients(make_settings(lovable_functions_url=None)) as clients:
        with pytest.raises(TransientError) as raised:
            await clients.lovable.deactivate_user("u1")
    assert raised.value.code == "connection_error"
    assert "lovable-url-not-configured" in str(clients.lovable._http.base_url)
