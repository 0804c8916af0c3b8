"""`entrega products list | add | set-price` against the test database."""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import Result
from typer.testing import CliRunner

from cli import app as cli_app

pytestmark = pytest.mark.db


async def entrega(database_url: str, *args: str) -> Result:
    """Run the `entrega` CLI on `database_url`, in a thread (it runs its own event loop)."""
    env = {"DATABASE_URL": database_url, "ENTREGA_ENV": "test"}
    return await asyncio.to_thread(CliRunner().invoke, cli_app, list(args), env=env)


async def listed(database_url: str) -> dict[str, dict[str, object]]:
    result = await entrega(database_url, "products", "list", "--json")
    assert result.exit_code == 0, result.output
    return {p["product_id"]: p for p in json.loads(result.output)}


async def test_list_shows_the_seeded_product(clean_db: str) -> None:
    """The dev seed's entrega-acesso, R$ 49,90 in BRL, valid now, in JSON and for people."""
    [product] = (await listed(clean_db)).values()
    assert (product["product_id"], product["currency"]) == ("entrega-acesso", "BRL")
    [price] = product["prices"]  # type: ignore[misc]
    assert price["price_cents"] == 4990 and price["valid_now"] and price["valid_until"] is None
    human = await entrega(clean_db, "products", "list")
    assert "entrega-acesso" in human.output and "R$ 49,90" in human.output


async def test_add_then_set_a_regular_price_and_a_promotion(clean_db: str) -> None:
    """add creates a product; set-price replaces the regular price and adds a dated window."""
    added = await entrega(clean_db, "products", "add", "curso-pro", "Curso Pro", "197,00")
    assert added.exit_code == 0, added.output
    changed = await entrega(clean_db, "products", "set-price", "curso-pro", "247")
    assert changed.exit_code == 0, changed.output
    promo = await entrega(
        clean_db,
        "products",
        "set-price",
        "curso-pro",
        "97.00",
        "--from",
        "2099-11-27",
        "--until",
        "2099-11-29",
    )
    assert promo.exit_code == 0, promo.output
    prices = (await listed(clean_db))["curso-pro"]["prices"]
    summary = [(p["price_cents"], p["valid_now"]) for p in prices]  # type: ignore[attr-defined]
    assert summary == [(19700, False), (24700, True), (9700, False)]
    old, regular, window = prices  # type: ignore[misc]
    assert old["valid_until"] == regular["valid_from"] and regular["valid_until"] is None
    # Dates are whole days in Brasília time: from the 27th's start to the 29th's end.
    assert window["valid_from"] == "2099-11-27T03:00:00+00:00"
    assert window["valid_until"] == "2099-11-30T03:00:00+00:00"


@pytest.mark.parametrize(
    ("args", "code", "exit_code"),
    [
        (["add", "entrega-acesso", "Outro", "10"], "product_exists", 1),
        (["add", "curso pro", "Curso", "10"], "invalid_product_id", 2),
        (["add", "curso", "Curso", "10", "--currency", "real"], "invalid_currency", 2),
        (["add", "curso", "Cur\x00so", "10"], "invalid_name", 2),
        (["add", "curso", "Curso", "0"], "invalid_price", 2),
        (["add", "curso", "Curso", "5.999"], "invalid_price", 2),
        (["add", "curso", "Curso", "1.234,56"], "invalid_price", 2),
        (["set-price", "nada", "10"], "product_not_found", 1),
        (["set-price", "entrega-acesso", "10", "--from", "amanhã"], "invalid_date", 2),
        (["set-price", "entrega-acesso", "10", "--from", "2026-11-27T00:00"], "invalid_date", 2),
        (
            ["set-price", "entrega-acesso", "10", "--from", "2026-11-28", "--until", "2026-11-26"],
            "invalid_window",
            2,
        ),
    ],
)
async def test_refusals_change_nothing(
    clean_db: str, args: list[str], code: str, exit_code: int
) -> None:
    """Bad input (exit 2) and refusals (exit 1) answer the API's error shape and write nothing."""
    before = await listed(clean_db)
    result = await entrega(clean_db, "products", *args, "--json")
    assert result.exit_code == exit_code, result.output
    assert json.loads(result.output)["error"]["code"] == code
    assert await listed(clean_db) == before
