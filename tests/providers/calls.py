"""One representative call per client, for tests that run the same scenario against each."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from decimal import Decimal
from typing import Any

import httpx

from providers.asaas import AsaasClient
from providers.lovable import LovableClient
from providers.mercadopago import MercadoPagoClient
from providers.resend import EmailMessage, ResendClient
from providers.supabase import SupabaseAuthClient

SECRET = "sk_live_very-secret-value"

MESSAGE = EmailMessage(
    from_="Entrega <nao-responda@entrega.app>",
    to="ana@example.com",
    subject="Seu acesso",
    html="<p>Olá</p>",
    text="Olá",
    tags={"kind": "credentials"},
)

Call = Callable[[httpx.AsyncClient], Awaitable[Any]]

CALLS: dict[str, Call] = {
    "mercadopago": lambda http: MercadoPagoClient(http, SECRET).get_payment("123"),
    "asaas": lambda http: AsaasClient(http, SECRET, "Entrega").create_subscription(
        "cus_1", "PIX", Decimal("49.90"), date(2026, 12, 1), "MONTHLY", "Plano", "prof-1"
    ),
    "supabase": lambda http: SupabaseAuthClient(http, SECRET).create_user(
        "ana@example.com", None, "s3cret-pass"
    ),
    "lovable": lambda http: LovableClient(http, SECRET).create_user(
        "ana@example.com", "s3cret-pass", "Ana Souza", "ord-1", "key-1"
    ),
    "resend": lambda http: ResendClient(http, SECRET).send_email(MESSAGE, "key-1"),
}
