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


def render(email_type: EmailType, **context: Any) -> tuple[str, str, str]:
    """(subject, html, text) of one e-mail."""
    subject = SUBJECTS[email_type].format(product_name=context["product_name"])
    html = _env.get_template(f"{email_type}.html").render(**context)
    text = _env.get_template(f"{email_type}.txt").render(**context)
    return subject, html, text
