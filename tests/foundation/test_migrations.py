"""Migrations apply once, in order, and safely when two processes race."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from db import embedded
from db.migrate import MigrationError, discover, migrate

pytestmark = pytest.mark.db


@pytest.fixture
def empty_database(postgres_server_url: str):
    name = f"entrega_mig_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield embedded.database_url(postgres_server_url, name)
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _versions(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]


def test_second_run_is_a_no_op(empty_database: str) -> None:
    """Every migration is applied by the first run and none by the second."""
    first = migrate(empty_database)
    assert [m.version for m in first] == [m.version for m in discover()]
    assert migrate(empty_database) == []
    assert _versions(empty_database) == [m.version for m in discover()]


def test_concurrent_runs_apply_each_migration_once(empty_database: str) -> None:
    """Four processes migrating at once apply every file exactly once, without errors."""
    with ThreadPoolExecutor(4) as executor:
        results = list(executor.map(lambda _: migrate(empty_database), range(4)))
    applied = sorted(m.version for result in results for m in result)
    assert applied == [m.version for m in discover()]
    assert _versions(empty_database) == applied


def test_first_migration_creates_the_purchase_tables(empty_database: str) -> None:
    """The purchase flow's tables exist after migrating."""
    migrate(empty_database)
    with psycopg.connect(empty_database) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables")}
    assert {"orders", "integration_logs", "email_logs"} <= tables


def test_a_failing_migration_leaves_no_trace(empty_database: str, tmp_path: Path) -> None:
    """A migration that fails rolls back entirely and is not recorded as applied."""
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE ok_table (id int);")
    (tmp_path / "0002_broken.sql").write_text("CREATE TABLE half (id int); SELECT * FROM nope;")
    with pytest.raises(MigrationError, match='0002_broken failed: relation "nope" does not exist'):
        migrate(empty_database, tmp_path)
    with psycopg.connect(empty_database) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables")}
    assert "ok_table" in tables and "half" not in tables
    assert _versions(empty_database) == [1]


def test_misnamed_or_duplicate_files_are_refused(tmp_path: Path) -> None:
    """A file not named NNNN_name.sql, or two files with one number, stop the run."""
    (tmp_path / "1_bad.sql").write_text("")
    with pytest.raises(ValueError, match=r"NNNN_name\.sql"):
        discover(tmp_path)
    (tmp_path / "1_bad.sql").unlink()
    (tmp_path / "0001_a.sql").write_text("")
    (tmp_path / "0001_b.sql").write_text("")
    with pytest.raises(ValueError, match="share version 1"):
        discover(tmp_path)


def test_cli_reports_a_failing_migration_without_a_traceback(
    empty_database: str, tmp_path: Path
) -> None:
    """`entrega migrate` names the failing migration and its reason, exit 1, no traceback."""
    import os
    import subprocess
    import sys

    env = {"PATH": os.environ["PATH"], "ENTREGA_ENV": "dev", "DATABASE_URL": empty_database}
    # A table the next migration will try to create makes it fail.
    with psycopg.connect(empty_database) as conn:
        conn.execute("CREATE TABLE plans (x int)")
    result = subprocess.run(
        [sys.executable, "-m", "cli", "migrate"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "applied 0001_purchases" in result.stdout
    assert 'migration 0002_accounts failed: relation "plans" already exists' in result.stderr
    assert "Traceback" not in result.stderr
