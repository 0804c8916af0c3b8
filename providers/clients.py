"""One client per outside service, each on its own `httpx.AsyncClient`, opened once per process."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import httpx

from providers.asaas import AsaasClient
from providers.lovable import LovableClient
from providers.mercadopago import MercadoPagoClient
from providers.resend import ResendClient
from providers.supabase import SupabaseAuthClient
from settings import Settings

# httpx logs every request's full URL at INFO, and the Supabase user look-up carries the e-mail in
# its query string (GET /auth/v1/admin/users?filter=<e-mail>): keep those lines out of any log.
logging.getLogger("httpx").setLevel(logging.WARNING)

# Where a service whose URL is unset (dev and tests only; production refuses to start) points:
# calls fail fast with a connection error naming the host instead of going somewhere real.
_UNCONFIGURED = "http://{name}-url-not-configured.invalid"


@dataclass(frozen=True)
class ProviderClients:
    mercadopago: MercadoPagoClient
    asaas: AsaasClient
    supabase: SupabaseAuthClient
    lovable: LovableClient
    resend: ResendClient


def http_timeout(settings: Settings) -> httpx.Timeout:
    """Every call is bounded; connecting gets less time than a whole answer."""
    total = settings.http_timeout_seconds.total_seconds()
    return httpx.Timeout(total, connect=min(total, 5.0))


@asynccontextmanager
async def open_provider_clients(settings: Settings) -> AsyncIterator[ProviderClients]:
    """The process's provider clients; their connections are closed on exit."""
    async with AsyncExitStack() as stack:

        async def http(name: str, url: str | None) -> httpx.AsyncClient:
            client = httpx.AsyncClient(
                base_url=url or _UNCONFIGURED.format(name=name),
                timeout=http_timeout(settings),
                limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
                headers={"Accept": "application/json"},
            )
            return await stack.enter_async_context(client)

        yield ProviderClients(
            mercadopago=MercadoPagoClient(
                await http("mercadopago", settings.mercadopago_api_url),
                settings.secret("mercadopago_access_token"),
            ),
            asaas=AsaasClient(
                await http("asaas", settings.asaas_api_url),
                settings.secret("asaas_api_key"),
                settings.asaas_user_agent or settings.product_name,
            ),
            supabase=SupabaseAuthClient(
                await http("supabase", settings.supabase_url),
                settings.secret("supabase_service_key"),
            ),
            lovable=LovableClient(
                await http("lovable", settings.lovable_functions_url),
                settings.secret("lovable_service_key"),
            ),
            resend=ResendClient(
                await http("resend", settings.resend_api_url), settings.secret("resend_api_key")
            ),
        )
