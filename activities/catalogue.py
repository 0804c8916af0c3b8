"""Does an approved payment pay for something Entrega sells? The catalogue's matching rule.

A purchase grants access only when its payment matches a product (README, "The product
catalogue"): by the product ids the checkout put on it, then a price valid when the payment was
created and the currency; or, when it names no product, by amount and currency alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from temporalio import activity

from activities.emails import brl
from contracts.purchases import (
    CATALOGUE_MISMATCH,
    MATCH_PRODUCT,
    MatchProduct,
    OrderState,
    Payment,
    PaymentItem,
    ProductMatch,
)
from db import orders, products
from db.journal import insert_log
from providers.mercadopago import MercadoPagoPayment

# More lines than any checkout of ours makes: refused rather than searched.
MAX_ITEMS = 10
_PREFIX = CATALOGUE_MISMATCH


@dataclass(frozen=True)
class Judgement:
    product_id: str | None
    mismatch: str | None
    details: dict[str, Any]


def mercadopago_items(payment: MercadoPagoPayment) -> list[PaymentItem]:
    """`additional_info.items[]` as the checkout set them (none: the payment names no product)."""
    info = payment.additional_info
    return [
        PaymentItem(
            product_id=item.id or None,
            title=item.title,
            quantity=1 if item.quantity is None else item.quantity,
            unit_price=item.unit_price,
        )
        for item in (info.items if info and info.items else [])
    ]


def shown(product_id: str) -> str:
    """A provider-given id as it may appear in a reason: quoted, escaped (no NUL or control
    characters reach the database) and cut short."""
    return repr(product_id[:64] + ("…" if len(product_id) > 64 else ""))


def money(cents: int, currency: str) -> str:
    """R$ 49,90 for reais, `USD 9.90` for anything else."""
    if currency == "BRL":
        return brl(cents) or ""
    return f"{currency} {Decimal(cents) / 100:.2f}"


def judge(payment: Payment, catalogue: list[products.ValidPrices], at: datetime) -> Judgement:
    """Match `payment` against the prices valid at `at`; the reason is for a person (pt-BR)."""
    when = at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    amount = payment.products_amount if payment.products_amount is not None else payment.amount
    currency = payment.currency.upper()

    def refuse(reason: str, **details: Any) -> Judgement:
        return Judgement(None, f"{_PREFIX}: {reason}", {"at": at.isoformat(), **details})

    if amount is None:
        return refuse("o pagamento não informa o valor")
    paid = amount * 100
    if paid != paid.to_integral_value():
        return refuse(f"valor {amount} {currency} não é um valor em centavos")
    paid_cents = int(paid)
    by_id = {entry.product_id: entry for entry in catalogue}

    if not payment.items:
        found = [
            e.product_id
            for e in catalogue
            if e.currency == currency and paid_cents in e.prices_cents
        ]
        if not found:
            return refuse(
                f"o pagamento não informa o produto e nenhum produto custava "
                f"{money(paid_cents, currency)} em {when}",
                amount_cents=paid_cents,
                currency=currency,
            )
        return Judgement(found[0], None, {"rule": "amount", "amount_cents": paid_cents})

    if len(payment.items) > MAX_ITEMS:
        return refuse(f"{len(payment.items)} itens; o catálogo aceita até {MAX_ITEMS}")
    totals = {0}
    for item in payment.items:
        if not item.product_id:
            return refuse("um item do pagamento não informa o produto")
        entry = by_id.get(item.product_id)
        if entry is None:
            return refuse(f"o produto {shown(item.product_id)} não está no catálogo")
        if entry.currency != currency:
            return refuse(
                f"pago em {currency}, mas {item.product_id!r} é vendido em {entry.currency}"
            )
        if item.quantity < 1:
            return refuse(f"quantidade {item.quantity} de {item.product_id!r}")
        if not entry.prices_cents:
            return refuse(f"{item.product_id!r} não tinha preço válido em {when}")
        totals = {t + item.quantity * p for t in totals for p in entry.prices_cents}
    if paid_cents not in totals:
        expected = ", ".join(money(t, currency) for t in sorted(totals))
        return refuse(
            f"valor pago {money(paid_cents, currency)} diferente do preço válido em {when} "
            f"({expected})",
            amount_cents=paid_cents,
            expected_cents=sorted(totals),
        )
    ids = [item.product_id for item in payment.items]
    return Judgement(ids[0], None, {"rule": "product", "products": ids})


class CatalogueActivities:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    @activity.defn(name=MATCH_PRODUCT)
    async def match_product(self, request: MatchProduct) -> ProductMatch:
        """Which product the approved payment paid for, or why none; logged on the order."""
        payment = request.payment
        at = payment.created_at or datetime.now(UTC)
        async with self._pool.connection() as conn:
            order = await orders.get_order(conn, request.order_id)
            if order is not None and (
                order.stage in ("completed", "revoked") or order.refunded_at is not None
            ):
                # Provisioned before the catalogue existed (or a late duplicate run): never
                # judged again, so a finished order is not parked afterwards. A refunded one
                # goes on to the run's refund check, which ends the run with its stage intact.
                return ProductMatch(order=await self._then(conn, request))
            verdict = judge(payment, await products.valid_prices(conn, at), at)
            await insert_log(
                conn,
                workflow_id=request.order_id,
                event="product_mismatch" if verdict.mismatch else "product_matched",
                error=verdict.mismatch,
                details=verdict.details,
            )
            state = None if verdict.mismatch else await self._then(conn, request)
        return ProductMatch(product_id=verdict.product_id, mismatch=verdict.mismatch, order=state)

    @staticmethod
    async def _then(conn: AsyncConnection[Any], request: MatchProduct) -> OrderState | None:
        """The stage a match leads to, in the verdict's transaction (patch
        `purchases-lean-path`); None when the workflow writes it itself."""
        if request.then is None:
            return None
        from activities.purchases import record_stage

        return await record_stage(conn, request.then)
