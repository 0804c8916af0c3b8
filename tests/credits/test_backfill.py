"""A database of the old system (shipments without usage rows, consumed_credits counters) moves
forward: migrations stop before dropping the counters, the backfill writes the usage rows the legacy
numbers imply (or refuses, naming the profiles), and then the counters go."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from db import embedded
from db.credits_backfill import BackfillRefused, backfill
from db.migrate import MIGRATIONS_DIR, MigrationError, discover, migrate
from tests.credits.conftest import entrega

pytestmark = pytest.mark.db

LEGACY_VERSION = 30


def at(month: int, day: int) -> datetime:
    return datetime(2026, month, day, 12, 0, tzinfo=UTC)


def _only_up_to(version: int, directory: Path) -> Path:
    """`directory`, filled with the migrations up to `version`."""
    directory.mkdir(exist_ok=True)
    for migration in discover():
        if migration.version <= version:
            shutil.copy(migration.path, directory / migration.path.name)
    return directory


@pytest.fixture
def legacy_url(postgres_server_url: str, tmp_path: Path) -> Iterator[str]:
    """A fresh database migrated only up to the legacy shape (0030)."""
    name = f"entrega_legacy_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = embedded.database_url(postgres_server_url, name)
    migrate(url, _only_up_to(LEGACY_VERSION, tmp_path / "legacy"))
    yield url
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


class Legacy:
    """Rows as the old system wrote them."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        conn.execute(
            "INSERT INTO plans (plan_id, name, price_cents, monthly_credits) "
            "VALUES ('three', 'Três', 1000, 3)"
        )

    def profile(self, *, plan: str | None = "three") -> uuid.UUID:
        digits = str(uuid.uuid4().int)[:11]
        row = self.conn.execute(
            """
            INSERT INTO profiles (auth_user_id, name, email, phone, cpf_cnpj, plan_id,
                                  current_period_start, current_period_end)
            VALUES (gen_random_uuid(), 'Legado', %s, %s, %s, %s, %s, %s) RETURNING profile_id
            """,
            (f"{digits}@example.com", digits, digits, plan, at(3, 10), at(4, 10)),
        ).fetchone()
        assert row
        return row[0]

    def purchase(
        self,
        profile_id: uuid.UUID,
        amount: int,
        consumed: int,
        created: datetime,
        expires: datetime | None = None,
    ) -> uuid.UUID:
        row = self.conn.execute(
            "INSERT INTO credit_purchases (profile_id, credits_amount, consumed_credits, "
            "expires_at, created_at) VALUES (%s, %s, %s, %s, %s) RETURNING purchase_id",
            (profile_id, amount, consumed, expires, created),
        ).fetchone()
        assert row
        return row[0]

    def shipment(self, profile_id: uuid.UUID, created: datetime) -> uuid.UUID:
        row = self.conn.execute(
            "INSERT INTO shipments (profile_id, recipient_name, destination_postal_code, "
            "weight_grams, created_at) VALUES (%s, 'Ana', '01310100', 300, %s) "
            "RETURNING shipment_id",
            (profile_id, created),
        ).fetchone()
        assert row
        return row[0]


def _seed_known_numbers(url: str) -> dict[str, object]:
    """Profile `good`: periods of 3 monthly credits and two purchases whose counters match the
    ledger's rule; profile `bad`: a counter that says 1 where its shipments say 2."""
    with psycopg.connect(url) as conn:
        legacy = Legacy(conn)
        good = legacy.profile()
        p1 = legacy.purchase(good, 10, consumed=1, created=at(1, 1))
        p2 = legacy.purchase(good, 5, consumed=2, created=at(2, 1), expires=at(3, 20))
        s = {
            label: legacy.shipment(good, when)
            for label, when in {
                "jan15": at(1, 15),
                "feb11": at(2, 11),
                "feb12": at(2, 12),
                "feb13": at(2, 13),
                "feb14": at(2, 14),
                "mar11": at(3, 11),
                "mar12": at(3, 12),
                "mar13": at(3, 13),
                "mar14": at(3, 14),
                "mar25": at(3, 25),
            }.items()
        }
        bad = legacy.profile(plan=None)
        legacy.purchase(bad, 3, consumed=1, created=at(1, 1))
        legacy.shipment(bad, at(2, 1))
        legacy.shipment(bad, at(2, 2))
    return {"good": good, "bad": bad, "p1": p1, "p2": p2, **s}


def _usage(url: str) -> dict[uuid.UUID, tuple[str, object, object, object, int]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT shipment_id, source_type, purchase_id, period_start, period_end, unit "
            "FROM credit_usage"
        ).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}  # type: ignore[misc]


async def _backfill(url: str, **options: bool):
    async with await psycopg.AsyncConnection.connect(url) as conn, conn.transaction():
        return await backfill(conn, **options)


async def test_backfill_writes_the_rows_the_legacy_numbers_imply(
    legacy_url: str, tmp_path: Path
) -> None:
    """Row by row: monthly credits per period up to the limit, the rest by spending order."""
    known = _seed_known_numbers(legacy_url)
    migrate(legacy_url, _only_up_to(31, tmp_path / "ledger"))
    with psycopg.connect(legacy_url) as conn:
        conn.execute(
            "UPDATE credit_purchases SET consumed_credits = 2 WHERE profile_id = %s",
            (known["bad"],),
        )
    report = await _backfill(legacy_url)
    good, p1, p2 = known["good"], known["p1"], known["p2"]
    assert report.written[good] == {"monthly": 7, "purchase": 3}
    jan, feb, mar = (at(1, 10), at(2, 10)), (at(2, 10), at(3, 10)), (at(3, 10), at(4, 10))
    usage = _usage(legacy_url)
    assert usage[known["jan15"]] == ("monthly", None, *jan, 1)
    assert usage[known["feb11"]] == ("monthly", None, *feb, 1)
    assert usage[known["feb12"]] == ("monthly", None, *feb, 2)
    assert usage[known["feb13"]] == ("monthly", None, *feb, 3)
    assert usage[known["feb14"]] == ("purchase", p2, None, None, 1)  # expires sooner than p1
    assert usage[known["mar11"]] == ("monthly", None, *mar, 1)
    assert usage[known["mar12"]] == ("monthly", None, *mar, 2)
    assert usage[known["mar13"]] == ("monthly", None, *mar, 3)
    assert usage[known["mar14"]] == ("purchase", p2, None, None, 2)
    assert usage[known["mar25"]] == ("purchase", p1, None, None, 1)  # p2 expired on the 20th
    assert len(usage) == 12  # and the two of `bad`


async def test_unreconcilable_profiles_are_named_and_nothing_is_written(
    legacy_url: str, tmp_path: Path
) -> None:
    """One profile whose counter disagrees stops the whole backfill, and is named."""
    known = _seed_known_numbers(legacy_url)
    migrate(legacy_url, _only_up_to(31, tmp_path / "ledger"))
    with pytest.raises(BackfillRefused) as refused:
        await _backfill(legacy_url)
    assert set(refused.value.problems) == {known["bad"]}
    assert (
        "consumed_credits says 1, the shipments account for 2"
        in refused.value.problems[known["bad"]][0]
    )
    assert _usage(legacy_url) == {}


async def test_a_counter_without_shipments_is_refused(legacy_url: str, tmp_path: Path) -> None:
    """A purchase whose counter claims credits no shipment used cannot be reconciled."""
    with psycopg.connect(legacy_url) as conn:
        legacy = Legacy(conn)
        lonely = legacy.profile()
        legacy.purchase(lonely, 5, consumed=2, created=at(1, 1))
    migrate(legacy_url, _only_up_to(31, tmp_path / "ledger"))
    with pytest.raises(BackfillRefused) as refused:
        await _backfill(legacy_url)
    assert set(refused.value.problems) == {lonely}


async def test_legacy_database_migrates_forward(legacy_url: str) -> None:
    """migrate stops before dropping the counters, backfill fills the ledger (once), then migrate
    drops consumed_credits and the backfill has nothing left to do."""
    known = _seed_known_numbers(legacy_url)
    with psycopg.connect(legacy_url) as conn:
        conn.execute(
            "UPDATE credit_purchases SET consumed_credits = 2 WHERE profile_id = %s",
            (known["bad"],),
        )
    with pytest.raises(MigrationError, match="`entrega credits backfill`"):
        migrate(legacy_url)
    dry = await _backfill(legacy_url, dry_run=True)
    assert sum(sum(c.values()) for c in dry.written.values()) == 12
    assert _usage(legacy_url) == {}
    first = await _backfill(legacy_url)
    again = await _backfill(legacy_url)
    assert sum(sum(c.values()) for c in first.written.values()) == 12
    assert again.written == {} and again.counters_present
    applied = migrate(legacy_url)
    assert [m.version for m in applied] == [
        m.version for m in discover(MIGRATIONS_DIR) if m.version > 31
    ]
    after = await _backfill(legacy_url)
    assert not after.counters_present
    with psycopg.connect(legacy_url) as conn:
        balance = conn.execute(
            "SELECT extra_remaining FROM credit_balances WHERE profile_id = %s", (known["good"],)
        ).fetchone()
    assert balance == (10 - 1,)  # p1's last 9; p2 expired in March 2026


async def test_cli_names_the_profiles_it_refuses(legacy_url: str, tmp_path: Path) -> None:
    """`entrega credits backfill` exits 1 naming the bad profile, then reports what it wrote."""
    known = _seed_known_numbers(legacy_url)
    migrate(legacy_url, _only_up_to(31, tmp_path / "ledger"))
    refused = await entrega(legacy_url, "credits", "backfill")
    assert refused.exit_code == 1
    assert f"profile {known['bad']}" in refused.output
    assert str(known["good"]) not in refused.output
    with psycopg.connect(legacy_url) as conn:
        conn.execute(
            "UPDATE credit_purchases SET consumed_credits = 2 WHERE profile_id = %s",
            (known["bad"],),
        )
    done = await entrega(legacy_url, "credits", "backfill")
    assert done.exit_code == 0, done.output
    assert f"profile {known['good']}: wrote 7 monthly + 3 purchase usage rows" in done.output
    assert "wrote 12 credit_usage rows for 2 profile(s)" in done.output


async def test_migration_refusal_is_a_complete_instruction(legacy_url: str) -> None:
    """What `entrega migrate` prints when 0032 refuses says what is wrong, that nothing changed,
    which profiles, and what to run, and it exits 1."""
    known = _seed_known_numbers(legacy_url)
    result = await entrega(legacy_url, "migrate")
    assert result.exit_code == 1, result.output
    message = result.output.split("failed: ", 1)[1]
    assert message.startswith("The credit ledger does not hold the legacy credit data yet")
    assert "(nothing was changed)" in message
    assert "12 shipment(s) without a credit_usage row" in message
    profiles = ", ".join(sorted(str(known[p]) for p in ("good", "bad")))
    assert f"in 2 profile(s): {profiles}." in message
    assert "run `entrega credits backfill --dry-run`" in message
    assert "then `entrega migrate` again" in message
    assert "Traceback" not in result.output and "CONTEXT" not in result.output
    with psycopg.connect(legacy_url) as conn:
        row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    assert row == (31,)
