"""`entrega`: run the processes, and let operators inspect and fix what the system did."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from settings import Settings

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


# --- sagas: parked signups and the orphan check (issue #5) -------------------------------------

sagas_app = typer.Typer(help="Registration and checkout sagas that needed undoing.")
app.add_typer(sagas_app, name="sagas")

_SIGNUP_TYPES = "WorkflowType IN ('RegistrationWorkflow', 'CheckoutWorkflow')"


def _saga_query(stage: str | None) -> str:
    if stage:
        return f"{_SIGNUP_TYPES} AND EntregaStage = '{stage.replace(chr(39), '')}'"
    return f"{_SIGNUP_TYPES} AND EntregaStage IS NOT NULL"


@sagas_app.command("list")
def sagas_list(
    stage: str | None = typer.Option(
        None, help="compensating | compensation_failed | rolled_back (default: all of them)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Signup sagas that had to be undone; `--stage compensation_failed` shows the parked ones."""
    import json

    from workflows.client import connect
    from workflows.search_attributes import STAGE

    settings = load_settings()

    async def _list() -> list[dict[str, str | None]]:
        client = await connect(settings.temporal_address, settings.temporal_namespace)
        return [
            {
                "workflow_id": wf.id,
                "type": wf.workflow_type,
                "status": wf.status.name if wf.status else None,
                "stage": wf.typed_search_attributes.get(STAGE),
                "started": wf.start_time.isoformat(),
            }
            async for wf in client.list_workflows(_saga_query(stage))
        ]

    rows = asyncio.run(_list())
    if json_output:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        console.print(f"{row['stage']:<20} {row['status']:<11} {row['workflow_id']}")
    console.print(f"{len(rows)} saga(s)")


@sagas_app.command("retry")
def sagas_retry(
    workflow_ids: Annotated[
        list[str] | None, typer.Argument(help="registration:... or checkout:... ids.")
    ] = None,
    stage: Annotated[
        str | None, typer.Option(help="Signal every saga in this stage instead.")
    ] = None,
) -> None:
    """Send `retry` to parked sagas: their failed compensation runs again."""
    from workflows.client import connect

    settings = load_settings()
    if not workflow_ids and not stage:
        err_console.print("give WORKFLOW_ID... or --stage")
        raise typer.Exit(2)

    async def _retry() -> list[str]:
        client = await connect(settings.temporal_address, settings.temporal_namespace)
        targets = list(workflow_ids or [])
        if stage:
            targets += [wf.id async for wf in client.list_workflows(_saga_query(stage))]
        for workflow_id in targets:
            await client.get_workflow_handle(workflow_id).signal("retry")
        return targets

    for workflow_id in asyncio.run(_retry()):
        console.print(f"retry sent to {workflow_id}")


@app.command()
def reconcile(
    json_output: bool = typer.Option(False, "--json", help="Print the orphans as JSON."),
) -> None:
    """List orphans across Supabase auth users, profiles and Asaas customers; exit 1 if any."""
    import json

    from activities.reconcile import find_orphans
    from db.pool import open_pool
    from providers.clients import open_provider_clients

    settings = load_settings()
    assert settings.database_url, "DATABASE_URL is not set"

    async def _find() -> list[dict[str, str]]:
        pool = await open_pool(settings.database_url or "", max_size=2)
        try:
            async with open_provider_clients(settings) as providers:
                return [o.model_dump() for o in await find_orphans(pool, providers)]
        finally:
            await pool.close()

    orphans = asyncio.run(_find())
    if json_output:
        typer.echo(json.dumps(orphans, indent=2))
    elif orphans:
        for orphan in orphans:
            console.print(f"[red]{orphan['kind']}[/red] {orphan['id']}  {orphan['detail']}")
        console.print(f"{len(orphans)} orphan(s)")
    else:
        console.print("no orphans")
    raise typer.Exit(1 if orphans else 0)


if __name__ == "__main__":
    sys.exit(app())
