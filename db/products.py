"""products and product_prices: the catalogue a purchase must match to grant access.

Functions take a connection; the caller owns the transaction.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from psycopg import AsyncConnection, errors
from psycopg.rows import class_row
from pydantic import BaseModel

PRODUCT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
CURRENCY = re.compile(r"[A-Z]{3}")
_AMOUNT = re.compile(r"(\d{1,9})(?:[.,](\d{1,2}))?")


class CatalogueError(Exception):
    """A catalogue change that was refused; nothing was written."""


class ProductExists(CatalogueError):
    """A product with that id already exists."""


class ProductNotFound(CatalogueError):
    """No product with that id."""


class PriceConflict(CatalogueError):
    """A regular price is already scheduled to start after the new one."""


class Product(BaseModel):
    product_id: str
    name: str
    currency: str
    created_by: str
    created_at: datetime


class Price(BaseModel):
    price_id: int
    product_id: str
    price_cents: int
    valid_from: datetime | None
    valid_until: datetime | None
    created_by: str
    created_at: datetime

    def valid_at(self, at: datetime) -> bool:
        return (self.valid_from is None or self.valid_from <= at) and (
            self.valid_until is None or at < self.valid_until
        )


class CatalogueEntry(BaseModel):
    product: Product
    prices: list[Price]


class ValidPrices(BaseModel):
    """A product and the prices it could be bought at, at one moment."""

    product_id: str
    currency: str
    prices_cents: list[int]


def parse_amount(text: str) -> int:
    """`49.90`, `49,90` or `49` → 4990 cents; ValueError for anything else (or zero)."""
    match = _AMOUNT.fullmatch(text.strip())
    if not match:
        raise ValueError(f"not an amount: {text!r} (use e.g. 49.90)")
    try:
        cents = int(Decimal(f"{match.group(1)}.{match.group(2) or '0'}") * 100)
    except InvalidOperation:  # pragma: no cover - the pattern admits only digits
        raise ValueError(f"not an amount: {text!r}") from None
    if cents <= 0:
        raise ValueError("the price must be more than zero")
    return cents


async def add_product(
    conn: AsyncConnection[Any],
    *,
    product_id: str,
    name: str,
    currency: str,
    price_cents: int,
    by: str,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
) -> CatalogueEntry:
    """A new product with its first price."""
    if valid_from and valid_until and valid_until <= valid_from:
        raise CatalogueError("the price's window ends before it starts")
    try:
        async with conn.transaction():
            cur = conn.cursor(row_factory=class_row(Product))
            await cur.execute(
                """
                INSERT INTO products (product_id, name, currency, created_by)
                VALUES (%(product_id)s, %(name)s, %(currency)s, %(by)s)
                RETURNING *
                """,
                {"product_id": product_id, "name": name, "currency": currency, "by": by},
            )
            product = await cur.fetchone()
    except errors.UniqueViolation:
        raise ProductExists(product_id) from None
    assert product is not None
    price = await _insert_price(conn, product_id, price_cents, valid_from, valid_until, by)
    return CatalogueEntry(product=product, prices=[price])


async def set_price(
    conn: AsyncConnection[Any],
    *,
    product_id: str,
    price_cents: int,
    by: str,
    now: datetime,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
) -> CatalogueEntry:
    """Give a product a price.

    With `valid_until` it is a window (a promotion; from `valid_from`, default now) beside the
    other prices, which stay as they are. Without it, it is the new regular price from
    `valid_from` (default now): every open-ended price ends where it starts. Nothing is
    deleted, so a payment made while an older price was valid still matches it.
    """
    product = await _lock_product(conn, product_id)
    if valid_until is not None:
        valid_from = valid_from or now
        if valid_until <= valid_from:
            raise CatalogueError("the price's window ends before it starts")
    else:
        start = valid_from or now
        later = await (
            await conn.execute(
                """
                SELECT valid_from FROM product_prices
                WHERE product_id = %(product_id)s AND valid_until IS NULL
                  AND valid_from >= %(start)s
                ORDER BY valid_from LIMIT 1
                """,
                {"product_id": product_id, "start": start},
            )
        ).fetchone()
        if later is not None:
            raise PriceConflict(f"a regular price already starts at {later[0].isoformat()}")
        await conn.execute(
            """
            UPDATE product_prices SET valid_until = %(start)s
            WHERE product_id = %(product_id)s AND valid_until IS NULL
            """,
            {"product_id": product_id, "start": start},
        )
        valid_from = start
    await _insert_price(conn, product_id, price_cents, valid_from, valid_until, by)
    return CatalogueEntry(product=product, prices=await _prices(conn, [product_id]))


async def list_products(conn: AsyncConnection[Any]) -> list[CatalogueEntry]:
    """Every product, with all its prices (past, current and scheduled) oldest first."""
    cur = conn.cursor(row_factory=class_row(Product))
    await cur.execute("SELECT * FROM products ORDER BY product_id")
    products = await cur.fetchall()
    prices = await _prices(conn, [p.product_id for p in products])
    return [
        CatalogueEntry(product=p, prices=[x for x in prices if x.product_id == p.product_id])
        for p in products
    ]


async def valid_prices(conn: AsyncConnection[Any], at: datetime) -> list[ValidPrices]:
    """Every product with the prices valid at `at` (an empty list when none is)."""
    cur = conn.cursor(row_factory=class_row(ValidPrices))
    await cur.execute(
        """
        SELECT p.product_id, p.currency,
               COALESCE(array_agg(DISTINCT pp.price_cents ORDER BY pp.price_cents)
                        FILTER (WHERE pp.price_id IS NOT NULL), '{}') AS prices_cents
        FROM products p
        LEFT JOIN product_prices pp ON pp.product_id = p.product_id
             AND (pp.valid_from IS NULL OR pp.valid_from <= %(at)s)
             AND (pp.valid_until IS NULL OR %(at)s < pp.valid_until)
        GROUP BY p.product_id, p.currency
        ORDER BY p.product_id
        """,
        {"at": at},
    )
    return await cur.fetchall()


# --- helpers ------------------------------------------------------------------------------------


async def _lock_product(conn: AsyncConnection[Any], product_id: str) -> Product:
    """The product, locked until the transaction ends, so two price changes never interleave."""
    cur = conn.cursor(row_factory=class_row(Product))
    await cur.execute(
        "SELECT * FROM products WHERE product_id = %(product_id)s FOR UPDATE",
        {"product_id": product_id},
    )
    product = await cur.fetchone()
    if product is None:
        raise ProductNotFound(product_id)
    return product


async def _insert_price(
    conn: AsyncConnection[Any],
    product_id: str,
    price_cents: int,
    valid_from: datetime | None,
    valid_until: datetime | None,
    by: str,
) -> Price:
    cur = conn.cursor(row_factory=class_row(Price))
    await cur.execute(
        """
        INSERT INTO product_prices (product_id, price_cents, valid_from, valid_until, created_by)
        VALUES (%(product_id)s, %(price_cents)s, %(valid_from)s, %(valid_until)s, %(by)s)
        RETURNING *
        """,
        {
            "product_id": product_id,
            "price_cents": price_cents,
            "valid_from": valid_from,
            "valid_until": valid_until,
            "by": by,
        },
    )
    price = await cur.fetchone()
    assert price is not None
    return price


async def _prices(conn: AsyncConnection[Any], product_ids: list[str]) -> list[Price]:
    cur = conn.cursor(row_factory=class_row(Price))
    await cur.execute(
        """
        SELECT * FROM product_prices WHERE product_id = ANY(%(ids)s)
        ORDER BY product_id, valid_from NULLS FIRST, price_id
        """,
        {"ids": product_ids},
    )
    return await cur.fetchall()
