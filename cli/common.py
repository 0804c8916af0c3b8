"""What every `entrega` command shares: settings, the database, Temporal, printing and failing."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer
from psycopg import AsyncConnection
from pydantic import ValidationError
from rich.console import Console

from settings import Settings

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)


def load_settings() -> Settings:
    """Settings, or a one-line error naming the variable and exit code 2."""
    try:
        settings = Settings()
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"]).upper()
            message = str(error.get("ctx", {}).get("error", error["msg"]))
            err_console.print(
                f"[red]configuration error:[/red] {f'{where} ' if where else ''}{message}"
            )
        raise typer.Exit(2) from None
    from telemetry.process import configure_process

    # Operator commands speak through the console; their log lines are warnings and worse.
    configure_process("cli", settings, level="WARNING")
    return settings


def require_database_url(settings: Settings) -> str:
    """DATABASE_URL, or a clear error (exit 2) saying how to get one."""
    if not settings.database_url:
        err_console.print(
            "[red]configuration error:[/red] DATABASE_URL is not set. Against `make dev`, "
            "load its environment first: `set -a; . .entrega/dev.env; set +a`"
        )
        raise typer.Exit(2)
    return settings.database_url


def cli_operator() -> str:
    """Who runs this operator command, for the record: ENTREGA_OPERATOR, or the OS user."""
    import getpass

    return os.environ.get("ENTREGA_OPERATOR") or getpass.getuser()


def recorder(
    action: str, target: str, reason: str | None
) -> Callable[[AsyncConnection[Any]], Awaitable[None]]:
    return lambda conn: record_cli_action(conn, action, target, reason)


async def record_cli_action(
    conn: AsyncConnection[Any], action: str, target: str, reason: str | None, **details: Any
) -> None:
    from db import operations
    from telemetry import events

    actor = cli_operator()
    await operations.record_action(
        conn, action=action, target=target, actor=actor, via="cli", reason=reason, details=details
    )
    events.operator_action(action, actor, target, reason)


def print_json(data: object) -> None:
    """Every --json answer, errors included: indented, UTF-8 as it is, dates as ISO text."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


async def with_conn(
    settings: Settings, action: Callable[[AsyncConnection[Any]], Awaitable[T]]
) -> T:
    """Run `action` in one transaction on DATABASE_URL."""
    url = require_database_url(settings)
    async with await AsyncConnection.connect(url) as conn, conn.transaction():
        return await action(conn)


def fail(as_json: bool, code: str, message: str, exit_code: int = 1) -> typer.Exit:
    """Report an error (the API's error shape on stdout with --json) and the exit to raise."""
    if as_json:
        print_json({"error": {"code": code, "message": message, "details": None}})
    else:
        err_console.print(f"[red]{message}[/red]", soft_wrap=True)
    return typer.Exit(exit_code)


def run_db(work: Callable[[AsyncConnection[Any]], Awaitable[T]]) -> T:
    """Run `work` in one transaction on DATABASE_URL, from synchronous CLI code."""
    return asyncio.run(with_conn(load_settings(), work))


async def temporal_client(settings: Settings) -> Any:
    """The Temporal client, or one line naming the address and exit 1 (no traceback)."""
    from workflows.client import connect

    try:
        return await connect(settings)
    except RuntimeError:
        err_console.print(f"cannot reach Temporal at {settings.temporal_address}", highlight=False)
        raise typer.Exit(1) from None
