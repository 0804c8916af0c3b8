"""`entrega products`: the catalogue purchases are matched against."""

from __future__ import annotations

from typing import Any

import typer
from psycopg import AsyncConnection

from cli.common import cli_operator, console, fail, print_json, run_db

app = typer.Typer(help="The product catalogue: what a purchase must pay for to grant access.")

_PRICE_HELP = "Price in the product's currency: 49.90 (or 49,90)."
_FROM_HELP = "Valid from: YYYY-MM-DD (that day's start, Brasília time) or ISO 8601 with zone."
_UNTIL_HELP = "Valid until: YYYY-MM-DD (through that day, Brasília time) or ISO 8601 with zone."


def _when(text: str | None, option: str, *, end_of_day: bool, as_json: bool) -> Any:
    """A --from/--until value as an aware datetime; a bare date is a whole day in Brasília."""
    from datetime import date, datetime, timedelta, timezone

    if text is None:
        return None
    brasilia = timezone(timedelta(hours=-3))  # no DST since 2019
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        start = datetime(day.year, day.month, day.day, tzinfo=brasilia)
        return start + timedelta(days=1) if end_of_day else start
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise fail(
            as_json, "invalid_date", f"{option}: use YYYY-MM-DD or an ISO 8601 datetime", 2
        ) from None
    if moment.tzinfo is None:
        message = f"{option}: a datetime needs its time zone (e.g. 2026-11-27T00:00:00-03:00)"
        raise fail(as_json, "invalid_date", message, 2)
    return moment


def _price_cents(text: str, as_json: bool) -> int:
    from db.products import parse_amount

    try:
        return parse_amount(text)
    except ValueError as exc:
        raise fail(as_json, "invalid_price", f"PRICE: {exc}", 2) from None


def _entry_json(entry: Any, now: Any) -> dict[str, Any]:
    product = entry.product
    return {
        "product_id": product.product_id,
        "name": product.name,
        "currency": product.currency,
        "created_by": product.created_by,
        "created_at": product.created_at.isoformat(),
        "prices": [
            {
                "price_cents": p.price_cents,
                "valid_from": p.valid_from.isoformat() if p.valid_from else None,
                "valid_until": p.valid_until.isoformat() if p.valid_until else None,
                "valid_now": p.valid_at(now),
                "created_by": p.created_by,
                "created_at": p.created_at.isoformat(),
            }
            for p in entry.prices
        ],
    }


def _print_entry(entry: Any, now: Any) -> None:
    from activities.catalogue import money

    product = entry.product
    console.print(f"{product.product_id}  {product.name}  ({product.currency})", soft_wrap=True)
    for p in entry.prices:
        since = f"{p.valid_from:%Y-%m-%d %H:%M %z}" if p.valid_from else "always"
        until = f"{p.valid_until:%Y-%m-%d %H:%M %z}" if p.valid_until else "no end"
        mark = "  valid now" if p.valid_at(now) else ""
        console.print(
            f"  {money(p.price_cents, product.currency):>14}  {since} → {until}{mark}",
            soft_wrap=True,
            highlight=False,
        )


@app.command("list")
def products_list(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Every product with all its prices: past, current and scheduled."""
    from datetime import UTC, datetime

    from db import products

    entries = run_db(products.list_products)
    now = datetime.now(UTC)
    if as_json:
        print_json([_entry_json(e, now) for e in entries])
        return
    if not entries:
        console.print("no products: purchases grant nothing until one is added")
    for entry in entries:
        _print_entry(entry, now)


@app.command("add")
def products_add(
    product_id: str = typer.Argument(..., metavar="PRODUCT_ID", help="The id the checkout uses."),
    name: str = typer.Argument(..., metavar="NAME"),
    price: str = typer.Argument(..., metavar="PRICE", help=_PRICE_HELP),
    currency: str = typer.Option("BRL", "--currency", help="ISO 4217 code."),
    valid_from: str | None = typer.Option(None, "--from", help=_FROM_HELP),
    valid_until: str | None = typer.Option(None, "--until", help=_UNTIL_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (errors too)."),
) -> None:
    """Add a product with its first price."""
    from datetime import UTC, datetime

    from db import products

    if not products.PRODUCT_ID.fullmatch(product_id):
        message = "PRODUCT_ID: letters, digits, '.', '_' or '-', at most 64, starting alphanumeric"
        raise fail(as_json, "invalid_product_id", message, 2)
    name = name.strip()
    if not name or len(name) > 200 or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise fail(as_json, "invalid_name", "NAME: 1 to 200 printable characters", 2)
    currency = currency.strip().upper()
    if not products.CURRENCY.fullmatch(currency):
        raise fail(as_json, "invalid_currency", "--currency: a 3-letter ISO 4217 code", 2)
    cents = _price_cents(price, as_json)
    start = _when(valid_from, "--from", end_of_day=False, as_json=as_json)
    end = _when(valid_until, "--until", end_of_day=True, as_json=as_json)

    async def _add(conn: AsyncConnection[Any]) -> products.CatalogueEntry:
        return await products.add_product(
            conn,
            product_id=product_id,
            name=name,
            currency=currency,
            price_cents=cents,
            valid_from=start,
            valid_until=end,
            by=cli_operator(),
        )

    try:
        entry = run_db(_add)
    except products.ProductExists:
        message = f"product {product_id} already exists: change its price with set-price"
        raise fail(as_json, "product_exists", message) from None
    except products.CatalogueError as refused:
        raise fail(as_json, "invalid_window", str(refused), 2) from None
    now = datetime.now(UTC)
    if as_json:
        print_json(_entry_json(entry, now))
        return
    console.print(f"added {product_id}", soft_wrap=True)
    _print_entry(entry, now)


@app.command("set-price")
def products_set_price(
    product_id: str = typer.Argument(..., metavar="PRODUCT_ID"),
    price: str = typer.Argument(..., metavar="PRICE", help=_PRICE_HELP),
    valid_from: str | None = typer.Option(None, "--from", help=_FROM_HELP),
    valid_until: str | None = typer.Option(
        None, "--until", help=_UNTIL_HELP + " Makes a window (promotion) beside the others."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (errors too)."),
) -> None:
    """Set a product's price: the new regular price (from now or --from: open-ended prices end
    there), or with --until a window, such as a promotion, valid beside the others."""
    from datetime import UTC, datetime

    from db import products

    cents = _price_cents(price, as_json)
    start = _when(valid_from, "--from", end_of_day=False, as_json=as_json)
    end = _when(valid_until, "--until", end_of_day=True, as_json=as_json)
    now = datetime.now(UTC)

    async def _set(conn: AsyncConnection[Any]) -> products.CatalogueEntry:
        return await products.set_price(
            conn,
            product_id=product_id,
            price_cents=cents,
            valid_from=start,
            valid_until=end,
            now=now,
            by=cli_operator(),
        )

    try:
        entry = run_db(_set)
    except products.ProductNotFound:
        raise fail(as_json, "product_not_found", f"no product {product_id}") from None
    except products.PriceConflict as refused:
        raise fail(as_json, "price_conflict", str(refused)) from None
    except products.CatalogueError as refused:
        raise fail(as_json, "invalid_window", str(refused), 2) from None
    if as_json:
        print_json(_entry_json(entry, now))
        return
    console.print(f"price set for {product_id}", soft_wrap=True)
    _print_entry(entry, now)
