"""`entrega credits show | grant | backfill` against the test database."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.credits.conftest import SHIPMENT, Ledger, entrega

pytestmark = pytest.mark.db


async def test_grant_then_show(clean_db: str, ledger: Ledger) -> None:
    """A grant from the CLI shows up in `credits show` as extra credits with its expiry."""
    customer = await ledger.customer(monthly_credits=2)
    granted = await entrega(
        clean_db, "credits", "grant", str(customer.profile_id), "5", "--expires", "2099-12-31"
    )
    assert granted.exit_code == 0, granted.output
    assert "granted 5 credits" in granted.output
    shown = await entrega(clean_db, "credits", "show", str(customer.profile_id), "--json")
    assert shown.exit_code == 0, shown.output
    body = json.loads(shown.output)
    assert body["total_remaining"] == 7
    assert body["extra"] == {"remaining": 5}
    [purchase] = body["purchases"]
    assert datetime.fromisoformat(purchase["expires_at"]) == datetime(2100, 1, 1, tzinfo=UTC)


async def test_show_reflects_spending(
    clean_db: str, ledger: Ledger, api: httpx.AsyncClient
) -> None:
    """What the API spent is what `credits show` reports, in its human form too."""
    customer = await ledger.customer(monthly_credits=2)
    await api.post("/api/v1/shipments", json=SHIPMENT, headers=customer.headers())
    shown = await entrega(clean_db, "credits", "show", str(customer.profile_id))
    assert shown.exit_code == 0, shown.output
    assert "1/2 used, 1 left" in shown.output


@pytest.mark.parametrize(
    "args",
    [
        ["credits", "grant", str(uuid.uuid4()), "5"],
        ["credits", "show", str(uuid.uuid4())],
    ],
)
async def test_unknown_profile_exits_1(clean_db: str, args: list[str]) -> None:
    """Naming a profile that does not exist is an error, and nothing is granted."""
    result = await entrega(clean_db, *args)
    assert result.exit_code == 1
    assert "no profile" in result.output


async def test_grant_refuses_a_past_expiry(clean_db: str, ledger: Ledger) -> None:
    """An expiry in the past is a usage error (exit 2)."""
    customer = await ledger.customer()
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    result = await entrega(
        clean_db, "credits", "grant", str(customer.profile_id), "5", "--expires", yesterday
    )
    assert result.exit_code == 2
    assert await ledger.count("credit_purchases") == 0


async def test_backfill_on_a_migrated_database_has_nothing_to_do(clean_db: str) -> None:
    """After migration 0032 the counters are gone and the backfill says so."""
    result = await entrega(clean_db, "credits", "backfill")
    assert result.exit_code == 0, result.output
    assert "nothing to backfill" in result.output


@pytest.mark.parametrize(
    ("args", "code", "exit_code"),
    [
        (["credits", "show", str(uuid.uuid4()), "--json"], "profile_not_found", 1),
        (["credits", "grant", str(uuid.uuid4()), "5", "--json"], "profile_not_found", 1),
        (["credits", "show", "not-a-uuid", "--json"], "invalid_profile_id", 2),
    ],
)
async def test_json_errors_are_json(
    clean_db: str, args: list[str], code: str, exit_code: int
) -> None:
    """With --json an error is the API's error shape on stdout, and the exit code says it failed."""
    result = await entrega(clean_db, *args)
    assert result.exit_code == exit_code, result.output
    assert json.loads(result.stdout)["error"]["code"] == code


@pytest.mark.parametrize(
    ("expires", "message"),
    [
        ("2099-12-31T10:00:00", "time zone"),
        ("31/12/2099", "YYYY-MM-DD"),
    ],
)
async def test_grant_refuses_an_unreadable_expiry(
    clean_db: str, ledger: Ledger, expires: str, message: str
) -> None:
    """An expiry without a zone or in another format is refused (exit 2), in JSON with --json."""
    customer = await ledger.customer()
    args = ["credits", "grant", str(customer.profile_id), "5", "--expires", expires, "--json"]
    result = await entrega(clean_db, *args)
    assert result.exit_code == 2, result.output
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "invalid_expiry"
    assert message in error["message"]
    assert await ledger.count("credit_purchases") == 0
