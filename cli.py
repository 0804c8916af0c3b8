"""`entrega`: run the processes, and let operators inspect and fix what the system did."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from psycopg import AsyncConnection
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from settings import Settings

T = TypeVar("T")

app = typer.Typer(help="Entrega: durable purchase provisioning, signup sagas and a credit ledger.")
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


def _recorder(
    action: str, target: str, reason: str | None
) -> Callable[[AsyncConnection[Any]], Awaitable[None]]:
    return lambda conn: _record_cli_action(conn, action, target, reason)


async def _record_cli_action(
    conn: AsyncConnection[Any], action: str, target: str, reason: str | None, **details: Any
) -> None:
    from db import operations
    from telemetry import events

    actor = cli_operator()
    await operations.record_action(
        conn, action=action, target=target, actor=actor, via="cli", reason=reason, details=details
    )
    events.operator_action(action, actor, target, reason)


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
    from telemetry import tracing
    from telemetry.process import configure_process

    settings = load_settings()
    require_database_url(settings)
    configure_process("api", settings)
    try:
        # Our own logging set-up and access lines (telemetry.http), not uvicorn's.
        uvicorn.run(
            create_app(settings),
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
    """Run `action` in one transaction on DATABASE_URL."""
    url = require_database_url(settings)
    async with await AsyncConnection.connect(url) as conn, conn.transaction():
        return await action(conn)


def _check_order_keys(*keys: str) -> None:
    """Refuse an ORDER_ID the API would refuse (a NUL reached PostgreSQL as a traceback)."""
    from api.validation import ORDER_KEY_PATTERN

    for key in keys:
        if not re.fullmatch(ORDER_KEY_PATTERN, key):
            err_console.print(
                f"[red]invalid order id {key!r}[/red]: letters, digits and _ . & : - only",
                highlight=False,
            )
            raise typer.Exit(2)


@orders_app.command("list")
def orders_list(
    stage: Annotated[str | None, typer.Option("--stage", help="Only this stage.")] = None,
    stuck: Annotated[
        str | None,
        typer.Option(
            "--stuck",
            help="Only orders stuck longer than this (e.g. 30m): in queued, creating_user, "
            "sending_credentials or a failed_* stage that began before then. Oldest first.",
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The most recently changed orders first (with --stuck: the longest stuck first)."""
    from rich.table import Table

    from api.routes.admin_orders import order_view
    from db import operations, orders
    from settings import parse_duration
    from workflows.purchase_types import STAGES

    if stage is not None and stage not in STAGES:
        err_console.print(f"[red]unknown stage {stage!r}[/red]; one of: {', '.join(STAGES)}")
        raise typer.Exit(2)
    if stuck is not None:
        try:
            older_than = parse_duration(stuck)
        except ValueError as exc:
            err_console.print(f"[red]--stuck: {exc}[/red]")
            raise typer.Exit(2) from None
    settings = load_settings()
    if stuck is not None:
        stuck_found = asyncio.run(
            _with_conn(settings, lambda c: operations.stuck_orders(c, older_than, limit=limit))
        )
        found: list[Any] = [o for o in stuck_found if stage is None or o.stage == stage]
        if as_json:
            _print_json([order_view(o) | {"stage_since": o.stage_since.isoformat()} for o in found])
            return
        table = Table("order", "stage", "since", "attempts", "last error")
        for o in found:
            table.add_row(
                o.order_id,
                o.stage,
                o.stage_since.strftime("%Y-%m-%d %H:%M:%S"),
                str(o.attempts),
                (o.last_error or "")[:60],
            )
        console.print(table)
        console.print(f"{len(found)} order(s) stuck longer than {stuck}")
        return
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

    _check_order_keys(order_id)
    settings = load_settings()

    async def _show() -> dict[str, Any] | None:
        try:
            client = await connect(settings)
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
    for action in shown["operator_actions"]:
        console.print(
            f"  {action['created_at']}  [bold]{action['action']}[/bold] by {action['actor']} "
            f"({action['via']}){': ' + action['reason'] if action['reason'] else ''}",
            soft_wrap=True,
        )


@orders_app.command("retry")
def orders_retry(
    order_ids: Annotated[list[str] | None, typer.Argument(help="Orders to retry now.")] = None,
    stage: Annotated[str | None, typer.Option("--stage", help="Every order in a stage.")] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why, for the record.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Signal `retry`: cut any wait short and run the failed step again (exit 1 if any fails).

    Each retry sent is recorded with who sent it (ENTREGA_OPERATOR or the OS user) and why."""
    from db import orders
    from workflows.client import connect
    from workflows.purchase_client import request_retry
    from workflows.purchase_types import STAGES

    if not order_ids and not stage:
        err_console.print("[red]give ORDER_ID... or --stage[/red]")
        raise typer.Exit(2)
    _check_order_keys(*(order_ids or []))
    if stage is not None and stage not in STAGES:
        err_console.print(f"[red]unknown stage {stage!r}[/red]; one of: {', '.join(STAGES)}")
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

        client = await connect(settings)
        results: dict[str, str] = {}
        for workflow_id in await _with_conn(settings, targets):
            try:
                await request_retry(client, workflow_id)
                results[workflow_id] = "retry requested"
            except Exception as exc:
                results[workflow_id] = f"failed: {exc}"
                continue
            await _with_conn(settings, _recorder("retry", workflow_id, reason))
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


@orders_app.command("cancel")
def orders_cancel(
    order_id: Annotated[str, typer.Argument(help="Order id, workflow id or provider's id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why, for the record (required).")],
) -> None:
    """End an order that will never succeed: it becomes `cancelled` at its next wait.

    A completed, revoked or cancelled order is refused (exit 1): cancelling never takes access
    away; refund the payment at the provider for that."""
    from temporalio.service import RPCError, RPCStatusCode

    from api.routes.admin_orders import FINISHED_STAGES
    from db import orders
    from workflows.client import connect
    from workflows.purchase_client import request_cancel
    from workflows.purchase_types import CancelRequest

    if not reason.strip():
        err_console.print("[red]--reason must say why[/red]")
        raise typer.Exit(2)
    settings = load_settings()

    async def _cancel() -> str | None:
        order = await _with_conn(settings, lambda conn: orders.get_order(conn, order_id))
        workflow_id = order.order_id if order else order_id
        if order is not None and order.stage in FINISHED_STAGES:
            return f"{workflow_id} is {order.stage}: not cancelled"
        client = await connect(settings)
        try:
            await request_cancel(
                client, workflow_id, CancelRequest(reason=reason, actor=cli_operator())
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return f"{workflow_id}: no running order"
            return f"{workflow_id}: {exc.message}"
        await _with_conn(
            settings, lambda conn: _record_cli_action(conn, "cancel", workflow_id, reason)
        )
        console.print(f"cancel sent to {workflow_id}", highlight=False)
        return None

    problem = asyncio.run(_cancel())
    if problem:
        err_console.print(f"[red]{problem}[/red]", soft_wrap=True)
        raise typer.Exit(1)


# --- sagas: parked signups and the orphan check (issue #5) -------------------------------------

sagas_app = typer.Typer(help="Registration and checkout sagas that needed undoing.")
app.add_typer(sagas_app, name="sagas")

_SIGNUP_TYPES = "WorkflowType IN ('RegistrationWorkflow', 'CheckoutWorkflow')"


async def _saga_client(settings: Settings) -> Any:
    """The Temporal client, or one line naming the address and exit 1 (no traceback)."""
    from workflows.client import connect

    try:
        return await connect(settings)
    except RuntimeError:
        err_console.print(f"cannot reach Temporal at {settings.temporal_address}", highlight=False)
        raise typer.Exit(1) from None


def _saga_query(stage: str | None) -> str:
    if stage:
        return f"{_SIGNUP_TYPES} AND EntregaStage = '{stage.replace(chr(39), '')}'"
    return f"{_SIGNUP_TYPES} AND EntregaStage IS NOT NULL"


def _registration_ids(settings: Settings, email: str) -> list[str]:
    """The workflow ids a registration of `email` may have: the keyed hash, and the e-mail
    itself for runs started before ids were hashed. Exit 2 if it is no e-mail address."""
    from api.validation import normalize_email
    from workflows import registration

    try:
        normalized = normalize_email(email)
    except ValueError:
        err_console.print(f"not an e-mail address: {email!r}", highlight=False)
        raise typer.Exit(2) from None
    return [
        registration.workflow_id(normalized, settings.secret("registration_id_key")),
        registration.legacy_workflow_id(normalized),
    ]


def _email_query(settings: Settings, email: str, stage: str | None) -> str:
    ids = " OR ".join(
        f"WorkflowId = '{i.replace(chr(39), '')}'" for i in _registration_ids(settings, email)
    )
    query = f"WorkflowType = 'RegistrationWorkflow' AND ({ids})"
    if stage:
        query += f" AND EntregaStage = '{stage.replace(chr(39), '')}'"
    return query


@sagas_app.command("list")
def sagas_list(
    stage: str | None = typer.Option(
        None, help="compensating | compensation_failed | rolled_back (default: all of them)."
    ),
    email: str | None = typer.Option(
        None, help="Only the registrations of this e-mail (found by its keyed hash), any stage."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Signup sagas that had to be undone; `--stage compensation_failed` shows the parked ones."""
    import json

    from workflows.search_attributes import STAGE

    settings = load_settings()

    async def _list() -> list[dict[str, str | None]]:
        client = await _saga_client(settings)
        return [
            {
                "workflow_id": wf.id,
                "type": wf.workflow_type,
                "status": wf.status.name if wf.status else None,
                "stage": wf.typed_search_attributes.get(STAGE),
                "started": wf.start_time.isoformat(),
            }
            async for wf in client.list_workflows(query)
        ]

    query = _email_query(settings, email, stage) if email else _saga_query(stage)
    rows = asyncio.run(_list())
    if json_output:
        typer.echo(json.dumps(rows, indent=2))
    else:
        for row in rows:
            console.print(f"{row['stage']:<20} {row['status']:<11} {row['workflow_id']}")
        console.print(f"{len(rows)} saga(s)")
    raise typer.Exit(0)


@sagas_app.command("retry")
def sagas_retry(
    workflow_ids: Annotated[
        list[str] | None,
        typer.Argument(
            help="registration:... or checkout:... ids; `registration:<e-mail>` finds the "
            "registration of that e-mail under either id."
        ),
    ] = None,
    stage: Annotated[
        str | None, typer.Option(help="Signal every saga in this stage instead.")
    ] = None,
) -> None:
    """Send `retry` to parked sagas: their failed compensation runs again.

    Each id gets one line: sent, or why not (no such saga, not parked); exit 1 if any was not."""
    from temporalio.client import Client, WorkflowExecutionStatus
    from temporalio.service import RPCError, RPCStatusCode

    from workflows.search_attributes import STAGE

    settings = load_settings()
    if not workflow_ids and not stage:
        err_console.print("give WORKFLOW_ID... or --stage")
        raise typer.Exit(2)

    async def _retry_one(client: Client, workflow_id: str) -> str | None:
        """None once the signal is sent, else the reason it was not."""
        handle = client.get_workflow_handle(workflow_id)
        try:
            description = await handle.describe()
            if description.status != WorkflowExecutionStatus.RUNNING:
                status = description.status.name.lower() if description.status else "closed"
                return f"not parked: already {status.replace('_', ' ')}"
            saga_stage = description.typed_search_attributes.get(STAGE)
            if saga_stage != "compensation_failed":
                # Signalling a saga that is not waiting would do nothing: say so instead.
                return f"not parked: {saga_stage or 'running'}"
            await handle.signal("retry")
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return "no such saga"
            return f"failed: {exc.message}"
        return None

    async def _retry() -> bool:
        client = await _saga_client(settings)
        targets = [await _resolve_saga_id(client, settings, i) for i in workflow_ids or []]
        if stage:
            in_stage = [wf.id async for wf in client.list_workflows(_saga_query(stage))]
            if not in_stage:
                console.print(f"no saga in stage {stage}")
            targets += in_stage
        all_sent = True
        for workflow_id in targets:
            reason = await _retry_one(client, workflow_id)
            if reason is None:
                console.print(f"retry sent to {workflow_id}", highlight=False)
            else:
                all_sent = False
                console.print(f"{workflow_id}: {reason}", highlight=False, soft_wrap=True)
        return all_sent

    raise typer.Exit(0 if asyncio.run(_retry()) else 1)


async def _resolve_saga_id(client: Any, settings: Settings, workflow_id: str) -> str:
    """`registration:<e-mail>` names a run under that legacy id if one exists, else the hashed
    id of that e-mail; any other id is taken as it is."""
    from temporalio.service import RPCError, RPCStatusCode

    prefix, _, rest = workflow_id.partition(":")
    if prefix != "registration" or "@" not in rest:
        return workflow_id
    try:
        await client.get_workflow_handle(workflow_id).describe()
        return workflow_id
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
    return _registration_ids(settings, rest)[0]


@app.command()
def reconcile(
    json_output: bool = typer.Option(False, "--json", help="Print the orphans as JSON."),
    providers_now: bool = typer.Option(
        False,
        "--providers",
        help="Run the Mercado Pago and Asaas reconciliation once, now, and print what it "
        "recovered (needs a running worker).",
    ),
    grace: str = typer.Option(
        "0s",
        "--grace",
        help="Ignore records younger than this (e.g. 30m); the schedule's is "
        "RECONCILE_ORPHANS_GRACE.",
    ),
) -> None:
    """List orphans across Supabase auth users, profiles and Asaas customers, and duplicate
    Asaas subscriptions of one checkout attempt; exit 1 if any. Records of a saga still
    running or parked are not orphans."""
    import json

    from activities.reconcile import find_orphans, running_sagas
    from db.pool import open_pool
    from providers.clients import open_provider_clients
    from settings import parse_duration

    settings = load_settings()
    if providers_now:
        _reconcile_providers(settings, json_output)
        return
    require_database_url(settings)
    try:
        min_age = parse_duration(grace)
    except ValueError as exc:
        err_console.print(f"[red]--grace:[/red] {exc}")
        raise typer.Exit(2) from None

    async def _find() -> list[dict[str, str]]:
        # Records of sagas still running or parked are not orphans: Temporal says which.
        busy = await running_sagas(await _saga_client(settings))
        pool = await open_pool(settings.database_url or "", max_size=2)
        try:
            async with open_provider_clients(settings) as providers:
                found = await find_orphans(pool, providers, grace=min_age, busy=busy)
                return [o.model_dump() for o in found]
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


def _reconcile_providers(settings: Settings, as_json: bool) -> None:
    """`entrega reconcile --providers`: both provider reconciliations, now, on the worker."""
    import uuid as _uuid

    from workflows.reconcile_asaas import ReconcileAsaasWorkflow
    from workflows.reconcile_mercadopago import ReconcileMercadoPagoWorkflow
    from workflows.reconcile_types import SCHEDULE_ASAAS, SCHEDULE_MERCADOPAGO, ReconcileInput

    async def _run() -> list[dict[str, Any]]:
        client = await _saga_client(settings)
        params = ReconcileInput(lookback=settings.reconcile_lookback)
        results = []
        for name, run in (
            (SCHEDULE_MERCADOPAGO, ReconcileMercadoPagoWorkflow.run),
            (SCHEDULE_ASAAS, ReconcileAsaasWorkflow.run),
        ):
            result = await client.execute_workflow(
                run,
                params,
                id=f"{name}-now-{_uuid.uuid4().hex[:8]}",
                task_queue=settings.temporal_task_queue,
            )
            results.append(result.model_dump(mode="json"))
        return results

    try:
        results = asyncio.run(_run())
    except typer.Exit:
        raise
    except Exception as exc:
        err_console.print(f"[red]reconciliation failed:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(1) from None
    if as_json:
        _print_json(results)
        return
    for result in results:
        console.print(
            f"{result['provider']}: read {result['read']} payments in {result['pages']} pages, "
            f"recovered {result['recovered_count']}",
            soft_wrap=True,
            highlight=False,
        )
        for target in result["recovered"]:
            console.print(f"  recovered {target}", soft_wrap=True, highlight=False)


# --- credits (issue #6): balances, grants and the legacy backfill --------------------------------

credits_app = typer.Typer(help="The credit ledger: balances, grants and the legacy backfill.")
app.add_typer(credits_app, name="credits")


_EXPIRY_MESSAGES = {
    "format": "use YYYY-MM-DD or an ISO 8601 datetime with its time zone",
    "no_zone": "a datetime needs its time zone (e.g. 2026-12-31T23:59:59-03:00 or ...Z)",
    "past": "the expiry is in the past",
}


def _fail(as_json: bool, code: str, message: str, exit_code: int = 1) -> typer.Exit:
    """Report an error (the API's error shape on stdout with --json) and the exit to raise."""
    if as_json:
        print(json.dumps({"error": {"code": code, "message": message, "details": None}}))
    else:
        err_console.print(f"[red]{message}[/red]", soft_wrap=True)
    return typer.Exit(exit_code)


def _profile_id(text: str, as_json: bool) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise _fail(as_json, "invalid_profile_id", f"not a profile id: {text!r}", 2) from None


def _run_db(work: Callable[[AsyncConnection[Any]], Awaitable[T]]) -> T:
    """Run `work` in one transaction on DATABASE_URL, from synchronous CLI code."""
    return asyncio.run(_with_conn(load_settings(), work))


@credits_app.command("show")
def credits_show(
    profile: str = typer.Argument(..., metavar="PROFILE_ID"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (errors too)."),
) -> None:
    """A profile's balance and each of its purchases."""
    from db import credits

    profile_id = _profile_id(profile, as_json)

    async def _show(
        conn: AsyncConnection[Any],
    ) -> tuple[credits.Balance | None, list[credits.PurchaseBalance]]:
        return await credits.balance(conn, profile_id), await credits.purchases(conn, profile_id)

    balance, purchases = _run_db(_show)
    if balance is None:
        raise _fail(as_json, "profile_not_found", f"no profile {profile_id}")
    if as_json:
        print(
            json.dumps(
                {
                    "profile_id": str(profile_id),
                    **balance.model_dump(mode="json"),
                    "purchases": [p.model_dump(mode="json") for p in purchases],
                }
            )
        )
        return
    m = balance.monthly
    period = (
        f"{m.period_start:%Y-%m-%d} → {m.period_end:%Y-%m-%d}"
        if m.period_start and m.period_end
        else "no period"
    )
    console.print(f"profile {profile_id}", soft_wrap=True)
    console.print(
        f"  monthly  {m.used}/{m.limit} used, {m.remaining} left ({period})", soft_wrap=True
    )
    console.print(f"  extra    {balance.extra.remaining} left", soft_wrap=True)
    console.print(f"  total    {balance.total_remaining} left", soft_wrap=True)
    table = Table("purchase", "credits", "used", "left", "expires", "created", "spendable")
    for p in purchases:
        table.add_row(
            str(p.purchase_id),
            str(p.credits_amount),
            str(p.used),
            str(p.remaining),
            f"{p.expires_at:%Y-%m-%d %H:%M}" if p.expires_at else "never",
            f"{p.created_at:%Y-%m-%d %H:%M}",
            "yes" if p.spendable else "no",
        )
    if purchases:
        console.print(table, soft_wrap=True)


@credits_app.command("grant")
def credits_grant(
    profile: str = typer.Argument(..., metavar="PROFILE_ID"),
    credits_amount: int = typer.Argument(..., min=1, metavar="N"),
    expires: str | None = typer.Option(
        None,
        "--expires",
        help="YYYY-MM-DD (valid through that day, UTC) or an ISO datetime with its time zone.",
    ),
    idempotency_key: str | None = typer.Option(
        None,
        "--idempotency-key",
        help="Grant at most once per key: a replay prints the first grant; the key with "
        "another grant is refused (the same keys as the API's Idempotency-Key).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (errors too)."),
) -> None:
    """Grant N purchased credits to a profile that has a subscription."""
    from db import credits

    profile_id = _profile_id(profile, as_json)
    expires_at = None
    if expires is not None:
        try:
            expires_at = credits.parse_expiry(expires)
        except credits.InvalidExpiry as invalid:
            message = f"--expires: {_EXPIRY_MESSAGES[invalid.reason]}"
            raise _fail(as_json, "invalid_expiry", message, 2) from None

    if idempotency_key is not None and not re.fullmatch(r"[!-~]{1,200}", idempotency_key):
        message = "--idempotency-key: 1 to 200 visible ASCII characters"
        raise _fail(as_json, "invalid_idempotency_key", message, 2)

    async def _grant(conn: AsyncConnection[Any]) -> credits.CreditPurchase:
        if idempotency_key is not None:
            granted, fresh = await credits.grant_credits_once(
                conn,
                idempotency_key=idempotency_key,
                profile_id=profile_id,
                credits_amount=credits_amount,
                expires_at=expires_at,
            )
            if not fresh:
                return granted  # a replay: the first grant is already on the record
        else:
            granted = await credits.grant_credits(
                conn, profile_id=profile_id, credits_amount=credits_amount, expires_at=expires_at
            )
        await _record_cli_action(
            conn,
            "grant",
            str(profile_id),
            None,
            purchase_id=str(granted.purchase_id),
            credits_amount=credits_amount,
        )
        return granted

    try:
        purchase = _run_db(_grant)
    except credits.IdempotencyKeyReused:
        message = f"idempotency key {idempotency_key!r} was used for another grant"
        raise _fail(as_json, "idempotency_key_reused", message) from None
    except credits.ProfileNotFound:
        raise _fail(as_json, "profile_not_found", f"no profile {profile_id}") from None
    except credits.NoSubscription:
        message = (
            f"profile {profile_id} has no subscription yet: grant after its first checkout "
            "completes (a failed first checkout deletes the profile)"
        )
        raise _fail(as_json, "profile_without_subscription", message) from None
    except credits.CheckoutInProgress:
        message = f"a checkout of profile {profile_id} is running: try again in a moment"
        raise _fail(as_json, "checkout_in_progress", message) from None
    if as_json:
        print(purchase.model_dump_json())
        return
    until = f", expires {purchase.expires_at:%Y-%m-%d %H:%M %Z}" if purchase.expires_at else ""
    console.print(
        f"granted {purchase.credits_amount} credits to {profile_id} "
        f"(purchase {purchase.purchase_id}{until})",
        soft_wrap=True,
    )


@credits_app.command("backfill")
def credits_backfill(
    dry_run: bool = typer.Option(False, "--dry-run", help="Reconcile and report, write nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Write the credit_usage rows that legacy shipments and consumed_credits counters imply.

    Idempotent. Refuses (exit 1, nothing written) when a profile's counters cannot be reconciled
    with its shipments, naming the profiles. Run it before `entrega migrate` applies 0032.
    """
    from db.credits_backfill import BackfillRefused, backfill

    try:
        report = _run_db(lambda conn: backfill(conn, dry_run=dry_run))
    except BackfillRefused as refused:
        if as_json:
            problems = {str(k): v for k, v in refused.problems.items()}
            print(json.dumps({"refused": True, "problems": problems}))
        else:
            err_console.print(
                f"[red]refused:[/red] {len(refused.problems)} profile(s) cannot be reconciled; "
                "nothing was written",
                soft_wrap=True,
            )
            for profile_id, issues in refused.problems.items():
                err_console.print(f"profile {profile_id}", soft_wrap=True)
                for issue in issues:
                    err_console.print(f"  {issue}", soft_wrap=True)
        raise typer.Exit(1) from None
    written = {
        str(k): {"monthly": v["monthly"], "purchase": v["purchase"]}
        for k, v in report.written.items()
    }
    if as_json:
        print(
            json.dumps(
                {
                    "refused": False,
                    "counters_present": report.counters_present,
                    "dry_run": dry_run,
                    "written": written,
                }
            )
        )
        return
    if not report.counters_present:
        console.print(
            "nothing to backfill: the legacy counters are gone (migration 0032 applied)",
            soft_wrap=True,
        )
        return
    if not written:
        console.print(
            "nothing to backfill: every shipment already has its credit_usage row", soft_wrap=True
        )
        return
    verb = "would write" if dry_run else "wrote"
    for profile_key, counts in written.items():
        console.print(
            f"profile {profile_key}: {verb} {counts['monthly']} monthly + "
            f"{counts['purchase']} purchase usage rows",
            soft_wrap=True,
        )
    total = sum(c["monthly"] + c["purchase"] for c in written.values())
    console.print(f"{verb} {total} credit_usage rows for {len(written)} profile(s)", soft_wrap=True)
    if not dry_run:
        console.print(
            "next: `entrega migrate` drops credit_purchases.consumed_credits", soft_wrap=True
        )


# --- products: the catalogue purchases are matched against (issue #9) ---------------------------

products_app = typer.Typer(
    help="The product catalogue: what a purchase must pay for to grant access."
)
app.add_typer(products_app, name="products")

_PRICE_HELP = "Price in the product's currency: 49.90 (or 49,90)."
_FROM_HELP = "Valid from: YYYY-MM-DD (that day's start, Brasília time) or ISO 8601 with zone."
_UNTIL_HELP = "Valid until: YYYY-MM-DD (through that day, Brasília time) or ISO 8601 with zone."


def _operator() -> str:
    """Who ran the command, recorded beside every catalogue change."""
    import getpass

    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def _when(text: str | None, option: str, *, end_of_day: bool, as_json: bool) -> Any:
    """A --from/--until value as an aware datetime; a bare date is a whole day in Brasília."""
    from datetime import date, datetime, timedelta, timezone

    if text is None:
        return None
    brasilia = timezone(timedelta(hours=-3))  # no DST since 2019
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        start = datetime(day.year, day.month, day.day, tzinfo=brasilia)
        return start + timedelta(days=1) if end_of_day else start
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _fail(
            as_json, "invalid_date", f"{option}: use YYYY-MM-DD or an ISO 8601 datetime", 2
        ) from None
    if moment.tzinfo is None:
        message = f"{option}: a datetime needs its time zone (e.g. 2026-11-27T00:00:00-03:00)"
        raise _fail(as_json, "invalid_date", message, 2)
    return moment


def _price_cents(text: str, as_json: bool) -> int:
    from db.products import parse_amount

    try:
        return parse_amount(text)
    except ValueError as exc:
        raise _fail(as_json, "invalid_price", f"PRICE: {exc}", 2) from None


def _entry_json(entry: Any, now: Any) -> dict[str, Any]:
    product = entry.product
    return {
        "product_id": product.product_id,
        "name": product.name,
        "currency": product.currency,
        "created_by": product.created_by,
        "created_at": product.created_at.isoformat(),
        "prices": [
            {
                "price_cents": p.price_cents,
                "valid_from": p.valid_from.isoformat() if p.valid_from else None,
                "valid_until": p.valid_until.isoformat() if p.valid_until else None,
                "valid_now": p.valid_at(now),
                "created_by": p.created_by,
                "created_at": p.created_at.isoformat(),
            }
            for p in entry.prices
        ],
    }


def _print_entry(entry: Any, now: Any) -> None:
    from activities.catalogue import money

    product = entry.product
    console.print(f"{product.product_id}  {product.name}  ({product.currency})", soft_wrap=True)
    for p in entry.prices:
        since = f"{p.valid_from:%Y-%m-%d %H:%M %z}" if p.valid_from else "always"
        until = f"{p.valid_until:%Y-%m-%d %H:%M %z}" if p.valid_until else "no end"
        mark = "  valid now" if p.valid_at(now) else ""
        console.print(
            f"  {money(p.price_cents, product.currency):>14}  {since} → {until}{mark}",
            soft_wrap=True,
            highlight=False,
        )


@products_app.command("list")
def products_list(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Every product with all its prices: past, current and scheduled."""
    from datetime import UTC, datetime

    from db import products

    entries = _run_db(products.list_products)
    now = datetime.now(UTC)
    if as_json:
        print(json.dumps([_entry_json(e, now) for e in entries], ensure_ascii=False))
        return
    if not entries:
        console.print("no products: purchases grant nothing until one is added")
    for entry in entries:
        _print_entry(entry, now)


@products_app.command("add")
def products_add(
    product_id: str = typer.Argument(..., metavar="PRODUCT_ID", help="The id the checkout uses."),
    name: str = typer.Argument(..., metavar="NAME"),
    price: str = typer.Argument(..., metavar="PRICE", help=_PRICE_HELP),
    currency: str = typer.Option("BRL", "--currency", help="ISO 4217 code."),
    valid_from: str | None = typer.Option(None, "--from", help=_FROM_HELP),
    valid_until: str | None = typer.Option(None, "--until", help=_UNTIL_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (errors too)."),
) -> None:
    """Add a product with its first price."""
    from datetime import UTC, datetime

    from db import products

    if not products.PRODUCT_ID.fullmatch(product_id):
        message = "PRODUCT_ID: letters, digits, '.', '_' or '-', at most 64, starting alphanumeric"
        raise _fail(as_json, "invalid_product_id", message, 2)
    name = name.strip()
    if not name or len(name) > 200 or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise _fail(as_json, "invalid_name", "NAME: 1 to 200 printable characters", 2)
    currency = currency.strip().upper()
    if not products.CURRENCY.fullmatch(currency):
        raise _fail(as_json, "invalid_currency", "--currency: a 3-letter ISO 4217 code", 2)
    cents = _price_cents(price, as_json)
    start = _when(valid_from, "--from", end_of_day=False, as_json=as_json)
    end = _when(valid_until, "--until", end_of_day=True, as_json=as_json)

    async def _add(conn: AsyncConnection[Any]) -> products.CatalogueEntry:
        return await products.add_product(
            conn,
            product_id=product_id,
            name=name,
            currency=currency,
            price_cents=cents,
            valid_from=start,
            valid_until=end,
            by=_operator(),
        )

    try:
        entry = _run_db(_add)
    except products.ProductExists:
        message = f"product {product_id} already exists: change its price with set-price"
        raise _fail(as_json, "product_exists", message) from None
    except products.CatalogueError as refused:
        raise _fail(as_json, "invalid_window", str(refused), 2) from None
    now = datetime.now(UTC)
    if as_json:
        print(json.dumps(_entry_json(entry, now), ensure_ascii=False))
        return
    console.print(f"added {product_id}", soft_wrap=True)
    _print_entry(entry, now)


@products_app.command("set-price")
def products_set_price(
    product_id: str = typer.Argument(..., metavar="PRODUCT_ID"),
    price: str = typer.Argument(..., metavar="PRICE", help=_PRICE_HELP),
    valid_from: str | None = typer.Option(None, "--from", help=_FROM_HELP),
    valid_until: str | None = typer.Option(
        None, "--until", help=_UNTIL_HELP + " Makes a window (promotion) beside the others."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (errors too)."),
) -> None:
    """Set a product's price: the new regular price (from now or --from: open-ended prices end
    there), or with --until a window, such as a promotion, valid beside the others."""
    from datetime import UTC, datetime

    from db import products

    cents = _price_cents(price, as_json)
    start = _when(valid_from, "--from", end_of_day=False, as_json=as_json)
    end = _when(valid_until, "--until", end_of_day=True, as_json=as_json)
    now = datetime.now(UTC)

    async def _set(conn: AsyncConnection[Any]) -> products.CatalogueEntry:
        return await products.set_price(
            conn,
            product_id=product_id,
            price_cents=cents,
            valid_from=start,
            valid_until=end,
            now=now,
            by=_operator(),
        )

    try:
        entry = _run_db(_set)
    except products.ProductNotFound:
        raise _fail(as_json, "product_not_found", f"no product {product_id}") from None
    except products.PriceConflict as refused:
        raise _fail(as_json, "price_conflict", str(refused)) from None
    except products.CatalogueError as refused:
        raise _fail(as_json, "invalid_window", str(refused), 2) from None
    if as_json:
        print(json.dumps(_entry_json(entry, now), ensure_ascii=False))
        return
    console.print(f"price set for {product_id}", soft_wrap=True)
    _print_entry(entry, now)


def main() -> NoReturn:
    """The `entrega` entry point. It exits without interpreter finalization: the Temporal client's
    Rust runtime can abort a short-lived process while Python finalizes ("PyGILState_Release",
    temporalio/sdk-python#300), turning a clean exit into a crash (134). Every command closes what
    it opened itself (pools, servers, child processes) before returning, so nothing is skipped."""
    try:
        app()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
