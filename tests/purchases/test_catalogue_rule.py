"""The matching rule against a real catalogue: ids, prices in their windows, currency, quantity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from psycopg_pool import AsyncConnectionPool

from activities.catalogue import CatalogueActivities, judge
from contracts.purchases import (
    MatchProduct,
    Payment,
    PaymentItem,
    StageChange,
)
from db import orders, products

pytestmark = pytest.mark.db

T0 = datetime(2026, 11, 1, 12, tzinfo=UTC)
PROMO_FROM, PROMO_UNTIL = datetime(2026, 11, 27, 3, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC)


def paid(amount: str, *items: PaymentItem, currency: str = "BRL") -> Payment:
    return Payment(
        state="approved",
        provider_status="approved",
        amount=Decimal(amount),
        currency=currency,
        items=list(items),
    )


def item(product_id: str | None = "entrega-acesso", quantity: int = 1) -> PaymentItem:
    return PaymentItem(product_id=product_id, quantity=quantity)


async def verdict(pool: AsyncConnectionPool, payment: Payment, at: datetime) -> str | None:
    async with pool.connection() as conn:
        return judge(payment, await products.valid_prices(conn, at), at).mismatch


@pytest.fixture
async def promotion(pool: AsyncConnectionPool) -> None:
    """The seeded R$ 49,90 plus a Black Friday price of R$ 29,90 for three days."""
    async with pool.connection() as conn:
        await products.set_price(
            conn,
            product_id="entrega-acesso",
            price_cents=2990,
            valid_from=PROMO_FROM,
            valid_until=PROMO_UNTIL,
            now=T0,
            by="test",
        )


@pytest.mark.parametrize(
    ("payment", "reason"),
    [
        (paid("49.90", item()), None),
        (paid("49.9"), None),  # no product named: amount and currency alone
        (paid("9.90", item()), "valor pago R$ 9,90 diferente do preço válido"),
        (paid("49.90", item(), currency="USD"), "pago em USD, mas 'entrega-acesso'"),
        (paid("49.90", currency="USD"), "nenhum produto custava USD 49.90"),
        (paid("49.90", item("outro-produto")), "'outro-produto' não está no catálogo"),
        (paid("9.90"), "nenhum produto custava R$ 9,90"),
        (paid("49.90", item("x\x00" + "y" * 5000)), "'x\\x00yyy"),
        (paid("99.80", item(quantity=2)), None),
        (paid("49.90", item(quantity=2)), "valor pago R$ 49,90 diferente"),
        (paid("0.00", item(quantity=0)), "quantidade 0"),
        (paid("49.90", item(), item(None)), "um item do pagamento não informa o produto"),
        (paid("49.905", item()), "não é um valor em centavos"),
        (Payment(state="approved", provider_status="approved"), "não informa o valor"),
    ],
)
async def test_rule(pool: AsyncConnectionPool, payment: Payment, reason: str | None) -> None:
    """Each payment is matched, or refused with a reason a person can act on."""
    mismatch = await verdict(pool, payment, T0)
    if reason is None:
        assert mismatch is None
    else:
        assert mismatch is not None and reason in mismatch, mismatch


@pytest.mark.usefixtures("promotion")
@pytest.mark.parametrize(
    ("at", "matches"),
    [
        (PROMO_FROM - timedelta(seconds=1), False),
        (PROMO_FROM, True),
        (PROMO_UNTIL - timedelta(seconds=1), True),
        (PROMO_UNTIL, False),
    ],
)
async def test_promotion_price_only_inside_its_window(
    pool: AsyncConnectionPool, at: datetime, matches: bool
) -> None:
    """R$ 29,90 is accepted for payments created inside the window, and only there."""
    for payment in (paid("29.90", item()), paid("29.90")):
        assert (await verdict(pool, payment, at) is None) is matches


@pytest.mark.usefixtures("promotion")
async def test_regular_price_stays_valid_during_a_promotion(pool: AsyncConnectionPool) -> None:
    """Paying the regular price during a promotion is no reason to park the customer."""
    assert await verdict(pool, paid("49.90", item()), PROMO_FROM + timedelta(hours=1)) is None


async def test_a_new_regular_price_keeps_older_payments_valid(pool: AsyncConnectionPool) -> None:
    """After a price change, a payment created before it still matches the old price."""
    change = datetime(2026, 12, 1, tzinfo=UTC)
    async with pool.connection() as conn:
        await products.set_price(
            conn, product_id="entrega-acesso", price_cents=5990, now=change, by="test"
        )
    before, after = change - timedelta(minutes=1), change + timedelta(minutes=1)
    assert await verdict(pool, paid("49.90", item()), before) is None
    assert await verdict(pool, paid("49.90", item()), after) is not None
    assert await verdict(pool, paid("59.90", item()), after) is None
    assert await verdict(pool, paid("59.90", item()), before) is not None


async def test_a_scheduled_regular_price_refuses_an_earlier_one(pool: AsyncConnectionPool) -> None:
    """A regular price set to start before one already scheduled would be cut short: refused."""
    async with pool.connection() as conn:
        later = T0 + timedelta(days=30)
        await products.set_price(
            conn,
            product_id="entrega-acesso",
            price_cents=5990,
            valid_from=later,
            now=T0,
            by="test",
        )
        with pytest.raises(products.PriceConflict):
            await products.set_price(
                conn, product_id="entrega-acesso", price_cents=5490, now=T0, by="test"
            )
        with pytest.raises(products.CatalogueError):
            await products.set_price(
                conn,
                product_id="entrega-acesso",
                price_cents=2990,
                valid_from=later,
                valid_until=later,
                now=T0,
                by="test",
            )
        with pytest.raises(products.ProductNotFound):
            await products.set_price(conn, product_id="nada", price_cents=1, now=T0, by="test")


async def test_matching_is_logged_and_finished_orders_are_not_judged_again(
    pool: AsyncConnectionPool,
) -> None:
    """The verdict is in the order's trail; an order already completed is never parked by it."""
    activities = CatalogueActivities(pool)
    bad = paid("9.90", item())
    bad.created_at = T0
    result = await activities.match_product(MatchProduct(order_id="purchase:x:1", payment=bad))
    assert result.mismatch and result.product_id is None
    async with pool.connection() as conn:
        [log] = await orders.order_logs(conn, "purchase:x:1")
        assert (log.event, log.error) == ("product_mismatch", result.mismatch)
        await orders.apply_stage(
            conn,
            StageChange(
                order_id="purchase:x:2",
                provider="mercadopago",
                provider_order_id="2",
                stage="completed",
                payment=bad,
            ),
        )
    done = await activities.match_product(MatchProduct(order_id="purchase:x:2", payment=bad))
    assert done.mismatch is None


async def test_a_hostile_product_id_cannot_wedge_the_order(pool: AsyncConnectionPool) -> None:
    """An id with NUL and 5,000 characters is refused with a short reason the database takes."""
    hostile = paid("49.90", item("x\x00" + "y" * 5000))
    result = await CatalogueActivities(pool).match_product(
        MatchProduct(order_id="purchase:x:3", payment=hostile)
    )
    assert result.mismatch and len(result.mismatch) < 200 and "\x00" not in result.mismatch
    async with pool.connection() as conn:
        [log] = await orders.order_logs(conn, "purchase:x:3")
    assert log.error == result.mismatch
