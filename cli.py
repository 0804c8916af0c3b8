"""`entrega`: run the processes, and let operators inspect and fix what the system did."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from settings import Settings

if TYPE_CHECKING:
    from psycopg import AsyncConnection

T = TypeVar("T")

app = typer.Typer(help="Entrega: durable purchase provisioning, signup sagas and a credit ledger.")
console = Console()
err_console = Console(stderr=True)


def load_settings() -> Settings:
    """Settings, or a one-line error naming the variable and exit code 2."""
    try:
        return Settings()
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"]) or "configuration"
            message = str(error.get("ctx", {}).get("error", error["msg"]))
            err_console.print(f"[red]configuration error:[/red] {where.upper()} {message}".strip())
        raise typer.Exit(2) from None


# --- processes ---------------------------------------------------------------------------------


@app.command()
def dev() -> None:
    """Run everything locally: PostgreSQL, Temporal + Web UI, sandbox, worker and API."""
    import devstack

    home = Path(os.environ.get("ENTREGA_HOME", ".entrega"))
    try:
        code = devstack.run(home, console.print)
    except devstack.DevError as exc:
        err_console.print(f"[red]entrega dev:[/red] {exc}")
        raise typer.Exit(1) from None
    raise typer.Exit(code)


@app.command()
def api() -> None:
    """Run the API and webhook gateway (uvicorn)."""
    import uvicorn

    from api.app import create_app

    settings = load_settings()
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
        access_log=False,
    )


@app.command()
def worker() -> None:
    """Run the Temporal worker on the `entrega` task queue."""
    import worker as worker_module

    asyncio.run(worker_module.run(load_settings()))


@app.command()
def sandbox() -> None:
    """Run the provider sandbox (emulates every outside service)."""
    import uvicorn

    from sandbox.app import create_app

    settings = load_settings()
    uvicorn.run(
        create_app(settings),
        host=settings.sandbox_host,
        port=settings.sandbox_port,
        log_level="warning",
        access_log=False,
    )


@app.command()
def migrate() -> None:
    """Apply pending database migrations (safe to run concurrently; a no-op when up to date)."""
    from db.migrate import migrate as apply

    settings = load_settings()
    assert settings.database_url
    applied = apply(settings.database_url)
    for migration in applied:
        console.print(f"applied {migration.version:04d}_{migration.name}")
    if not applied:
        console.print("database is up to date")


@app.command()
def setup() -> None:
    """Register Entrega's search attributes on the Temporal namespace (idempotent)."""
    from workflows.client import connect, register_search_attributes

    settings = load_settings()

    async def _setup() -> list[str]:
        client = await connect(settings.temporal_address, settings.temporal_namespace)
        return await register_search_attributes(client)

    added = asyncio.run(_setup())
    console.print(
        f"registered {', '.join(added)}" if added else "search attributes already present"
    )


@app.command("worker-ready", hidden=True)
def worker_ready() -> None:
    """Exit 0 when a worker polls the task queue (used by `entrega dev`)."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    from workflows.client import connect

    settings = load_settings()

    async def _pollers() -> int:
        client = await connect(settings.temporal_address, settings.temporal_namespace)
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=settings.temporal_namespace,
                task_queue=TaskQueue(name=settings.temporal_task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
            )
        )
        return len(response.pollers)

    raise typer.Exit(0 if asyncio.run(_pollers()) > 0 else 1)


# --- purchases (issue #4) ----------------------------------------------------------------------

orders_app = typer.Typer(
    help="Purchase orders: list, inspect and retry (the workflow id works too)."
)
app.add_typer(orders_app, name="orders")


def _print_json(data: object) -> None:
    import json

    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


async def _with_conn(
    settings: Settings, action: Callable[[AsyncConnection[Any]], Awaitable[T]]
) -> T:
    from psycopg import AsyncConnection

    assert settings.database_url, "DATABASE_URL is not set"
    async with await AsyncConnection.connect(settings.database_url) as conn:
        return await action(conn)


@orders_app.command("list")
def orders_list(
    stage: Annotated[str | None, typer.Option("--stage", help="Only this stage.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The most recently changed orders first."""
    from rich.table import Table

    from api.routes.admin_orders import order_view
    from db import orders
    from workflows.purchase_types import STAGES

    if stage is not None and stage not in STAGES:
        err_console.print(f"[red]unknown stage {stage!r}[/red]; one of: {', '.join(STAGES)}")
        raise typer.Exit(2)
    settings = load_settings()
    found = asyncio.run(
        _with_conn(settings, lambda c: orders.list_orders(c, stage=stage, limit=limit))
    )
    if as_json:
        _print_json([order_view(o) for o in found])
        return
    table = Table("order", "stage", "customer", "attempts", "last error", "updated")
    for o in found:
        table.add_row(
            o.order_id,
            o.stage,
            o.customer_email or "",
            str(o.attempts),
            (o.last_error or "")[:60],
            o.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    console.print(table)


@orders_app.command("show")
def orders_show(
    order_id: Annotated[str, typer.Argument(help="Order id, workflow id or provider's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """One order: its row, the workflow's live status, the audit trail and the e-mails."""
    from api.routes.admin_orders import describe_order
    from workflows.client import connect

    settings = load_settings()

    async def _show() -> dict[str, Any] | None:
        try:
            client = await connect(settings.temporal_address, settings.temporal_namespace)
        except Exception:
            client = None  # the database still tells the story
        return await _with_conn(settings, lambda conn: describe_order(conn, client, order_id))

    shown = asyncio.run(_show())
    if shown is None:
        err_console.print(f"[red]no order {order_id}[/red]")
        raise typer.Exit(1)
    if as_json:
        _print_json(shown)
        return
    order = shown["order"]
    assert isinstance(order, dict)
    for key in (
        "order_id",
        "stage",
        "customer_email",
        "customer_name",
        "amount_cents",
        "lovable_user_id",
        "attempts",
        "last_error",
        "next_retry_at",
        "updated_at",
    ):
        console.print(f"[bold]{key}[/bold]: {order.get(key)}")
    workflow_status = shown["workflow"]
    console.print(f"[bold]workflow[/bold]: {workflow_status or 'not running'}")
    for entry in shown["integration_logs"]:
        console.print(
            f"  {entry['created_at']}  {entry['event']:<15} {entry['stage'] or ''} "
            f"{entry['error'] or ''}"
        )
    for email in shown["email_logs"]:
        console.print(f"  e-mail {email['email_type']} to {email['recipient']}: {email['status']}")


@orders_app.command("retry")
def orders_retry(
    order_ids: Annotated[list[str] | None, typer.Argument(help="Orders to retry now.")] = None,
    stage: Annotated[str | None, typer.Option("--stage", help="Every order in a stage.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Signal `retry`: cut any wait short and run the failed step again (exit 1 if any fails)."""
    from db import orders
    from workflows.client import connect
    from workflows.purchase_client import request_retry

    if not order_ids and not stage:
        err_console.print("[red]give ORDER_ID... or --stage[/red]")
        raise typer.Exit(2)
    settings = load_settings()

    async def _retry() -> dict[str, str]:
        async def targets(conn: AsyncConnection[Any]) -> list[str]:
            ids = []
            for key in order_ids or []:
                order = await orders.get_order(conn, key)
                ids.append(order.order_id if order else key)
            if stage:
                ids += [
                    o.order_id for o in await orders.list_orders(conn, stage=stage, limit=10_000)
                ]
            return ids

        client = await connect(settings.temporal_address, settings.temporal_namespace)
        results: dict[str, str] = {}
        for workflow_id in await _with_conn(settings, targets):
            try:
                await request_retry(client, workflow_id)
                results[workflow_id] = "retry requested"
            except Exception as exc:
                results[workflow_id] = f"failed: {exc}"
        return results

    results = asyncio.run(_retry())
    if as_json:
        _print_json(results)
    else:
        for workflow_id, outcome in results.items():
            console.print(f"{workflow_id}: {outcome}")
        if not results:
            console.print("no orders to retry")
    if any(outcome.startswith("failed") for outcome in results.values()):
        raise typer.Exit(1)


if __name__ == "__main__":
    sys.exit(app())
