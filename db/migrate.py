"""Forward-only migrations: numbered SQL files applied once each, in order, under a lock."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same for every process that migrates this database.
_LOCK_KEY = 0x656E7472  # "entr"
_FILENAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")


class MigrationError(RuntimeError):
    """A migration failed and was rolled back; the message names it and says why."""

    def __init__(self, migration: Migration, cause: psycopg.Error) -> None:
        detail = cause.diag.message_primary or str(cause)
        super().__init__(f"migration {migration.version:04d}_{migration.name} failed: {detail}")
        self.migration = migration


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """All migration files, sorted by version; a malformed name or a repeated number is an error."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILENAME.match(path.name)
        if not match:
            raise ValueError(f"migration file {path.name!r} is not named NNNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise ValueError(f"two migrations share version {version}: {path.name}")
        found[version] = Migration(version, match.group(2), path)
    return [found[v] for v in sorted(found)]


def migrate(
    database_url: str,
    directory: Path = MIGRATIONS_DIR,
    *,
    on_applied: Callable[[Migration], None] | None = None,
) -> list[Migration]:
    """Apply every pending migration and return those applied; a no-op when up to date.

    Each migration runs in its own transaction together with its version row, and the whole run
    holds a session advisory lock, so two processes migrating at once apply each file exactly once.
    A failing migration leaves no trace and raises `MigrationError`; those before it stay applied.
    """
    applied: list[Migration] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version    integer PRIMARY KEY,
                    name       text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """
            )
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for migration in discover(directory):
                if migration.version in done:
                    continue
                try:
                    with conn.transaction():
                        conn.execute(migration.sql().encode())
                        conn.execute(
                            "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                            (migration.version, migration.name),
                        )
                except psycopg.Error as exc:
                    raise MigrationError(migration, exc) from exc
                applied.append(migration)
                if on_applied:
                    on_applied(migration)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied
