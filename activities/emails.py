"""The customer's e-mails, rendered from the pt-BR Jinja2 templates in `activities/templates/`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

EmailType = Literal["purchase_confirmation", "credentials"]

SUBJECTS: dict[EmailType, str] = {
    "purchase_confirmation": "Recebemos o seu pedido do {product_name}",
    "credentials": "Seu acesso ao {product_name}",
}

_env = Environment(
    loader=PackageLoader("activities", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


def brl(amount_cents: int | None) -> str | None:
    """R$ 1.234,56"""
    if amount_cents is None:
        return None
    whole = f"{Decimal(amount_cents) / 100:,.2f}"
    return "R$ " + whole.replace(",", "_").replace(".", ",").replace("_", ".")


# How the customer paid, in their words: Mercado Pago's `payment_method_id` and AppMax's
# `payment_type`. Card brands all read as "Cartão de crédito"; anything unknown is shown as given.
_PAYMENT_METHODS = {
    "pix": "Pix",
    "bolbradesco": "Boleto",
    "boleto": "Boleto",
    "billet": "Boleto",
    "pec": "Pagamento na lotérica",
    "account_money": "Saldo do Mercado Pago",
    "creditcard": "Cartão de crédito",
    "credit_card": "Cartão de crédito",
    "visa": "Cartão de crédito",
    "master": "Cartão de crédito",
    "amex": "Cartão de crédito",
    "elo": "Cartão de crédito",
    "hipercard": "Cartão de crédito",
    "debit_card": "Cartão de débito",
    "debvisa": "Cartão de débito",
    "debmaster": "Cartão de débito",
    "debelo": "Cartão de débito",
}


def payment_method_label(method: str | None) -> str | None:
    """Pix, Boleto, Cartão de crédito…; None when the provider did not say."""
    if not method:
        return None
    return _PAYMENT_METHODS.get(method.strip().lower(), method)


def render(email_type: EmailType, **context: Any) -> tuple[str, str, str]:
    """(subject, html, text) of one e-mail."""
    subject = SUBJECTS[email_type].format(product_name=context["product_name"])
    html = _env.get_template(f"{email_type}.html").render(**context)
    text = _env.get_template(f"{email_type}.txt").render(**context)
    return subject, html, text
