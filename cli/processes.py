"""The long-running processes: dev, api, worker, sandbox, codec-server; migrate and setup."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from cli.common import console, err_console, load_settings, require_database_url

app = typer.Typer()


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
    from telemetry import tracing
    from telemetry.process import configure_process

    settings = load_settings()
    require_database_url(settings)
    configure_process("api", settings)
    try:
        if settings.api_workers == 1:
            # Our own logging set-up and access lines (telemetry.http), not uvicorn's.
            uvicorn.run(
                create_app(settings),
                host=settings.api_host,
                port=settings.api_port,
                log_config=None,
                access_log=False,
            )
            return
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # /metrics must count every process's requests, not just the one it reached.
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="entrega-metrics-")
        uvicorn.run(
            "api.app:create_app_from_environment",
            factory=True,
            workers=settings.api_workers,
            host=settings.api_host,
            port=settings.api_port,
            log_config=None,
            access_log=False,
        )
    finally:
        tracing.shutdown()


@app.command()
def worker() -> None:
    """Run the Temporal worker on the `entrega` task queue."""
    import worker as worker_module
    from telemetry.process import configure_process

    settings = load_settings()
    require_database_url(settings)
    configure_process("worker", settings)
    asyncio.run(worker_module.run(settings))


@app.command()
def sandbox(
    keep_state: Annotated[
        bool,
        typer.Option(
            "--keep-state/--memory-only",
            help="Keep the state in <ENTREGA_HOME>/sandbox-state.json across restarts.",
        ),
    ] = True,
) -> None:
    """Run the provider sandbox (emulates every outside service)."""
    import uvicorn

    from sandbox.app import create_app
    from telemetry.process import configure_process

    settings = load_settings()
    configure_process("sandbox", settings)
    # PostgreSQL keeps its data across restarts, so the sandbox keeps its users too.
    state_file = settings.entrega_home / "sandbox-state.json" if keep_state else None
    uvicorn.run(
        create_app(settings, state_file=state_file),
        host=settings.sandbox_host,
        port=settings.sandbox_port,
        log_config=None,
        access_log=False,
    )


@app.command("codec-server")
def codec_server() -> None:
    """Run the codec server the Temporal Web UI decodes payloads with (never on the gateway)."""
    import uvicorn

    from api.codec_server import create_codec_app
    from settings import SettingsError

    settings = load_settings()
    try:
        codec_app = create_codec_app(settings)
    except SettingsError as exc:
        err_console.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None
    uvicorn.run(
        codec_app,
        host=settings.codec_server_host,
        port=settings.codec_server_port,
        log_level="warning",
        access_log=False,
    )


@app.command()
def migrate() -> None:
    """Apply pending database migrations (safe to run concurrently; a no-op when up to date)."""
    from db.migrate import Migration, MigrationError
    from db.migrate import migrate as apply

    def report(migration: Migration) -> None:
        console.print(f"applied {migration.version:04d}_{migration.name}")

    database_url = require_database_url(load_settings())
    try:
        applied = apply(database_url, on_applied=report)
    except MigrationError as exc:
        err_console.print(f"[red]entrega migrate:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(1) from None
    if not applied:
        console.print("database is up to date")


@app.command()
def setup() -> None:
    """Register Entrega's search attributes and create or update its Temporal Schedules
    (idempotent; a paused schedule stays paused)."""
    from workflows.client import connect, register_search_attributes
    from workflows.schedules import ensure_schedules

    settings = load_settings()

    async def _setup() -> tuple[list[str], dict[str, str]]:
        client = await connect(settings)
        added = await register_search_attributes(client)
        return added, await ensure_schedules(client, settings)

    added, scheduled = asyncio.run(_setup())
    console.print(
        f"registered {', '.join(added)}" if added else "search attributes already present"
    )
    for schedule_id, outcome in scheduled.items():
        console.print(f"schedule {schedule_id} {outcome}")


@app.command("worker-ready", hidden=True)
def worker_ready() -> None:
    """Exit 0 when a worker polls the task queue (used by `entrega dev`)."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    from workflows.client import connect

    settings = load_settings()

    async def _pollers() -> int:
        client = await connect(settings)
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=settings.temporal_namespace,
                task_queue=TaskQueue(name=settings.temporal_task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
            )
        )
        return len(response.pollers)

    raise typer.Exit(0 if asyncio.run(_pollers()) > 0 else 1)
