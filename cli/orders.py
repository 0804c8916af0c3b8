"""`entrega orders`: list, show, retry and cancel purchase orders."""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any

import typer
from psycopg import AsyncConnection

from cli.common import (
    cli_operator,
    console,
    err_console,
    load_settings,
    print_json,
    record_cli_action,
    recorder,
    with_conn,
)

app = typer.Typer(help="Purchase orders: list, inspect and retry (the workflow id works too).")


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


def _print_orders(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """A table whose order ids are never cut: an operator copies them into `show` and `retry`.
    In a narrow terminal the other columns shrink and fold instead."""
    from rich.table import Table

    widest = max((len(row[0]) for row in rows), default=len(headers[0]))
    table = Table()
    table.add_column(headers[0], no_wrap=True, overflow="fold", min_width=widest)
    for header in headers[1:]:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console.print(table)


@app.command("list")
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
    from contracts.purchases import STAGES
    from db import operations, orders
    from db.order_views import order_view
    from settings import parse_duration

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
            with_conn(settings, lambda c: operations.stuck_orders(c, older_than, limit=limit))
        )
        found: list[Any] = [o for o in stuck_found if stage is None or o.stage == stage]
        if as_json:
            print_json([order_view(o) | {"stage_since": o.stage_since.isoformat()} for o in found])
            return
        _print_orders(
            ("order", "stage", "since", "attempts", "last error"),
            [
                (
                    o.order_id,
                    o.stage,
                    o.stage_since.strftime("%Y-%m-%d %H:%M:%S"),
                    str(o.attempts),
                    (o.last_error or "")[:60],
                )
                for o in found
            ],
        )
        console.print(f"{len(found)} order(s) stuck longer than {stuck}")
        return
    found = asyncio.run(
        with_conn(settings, lambda c: orders.list_orders(c, stage=stage, limit=limit))
    )
    if as_json:
        print_json([order_view(o) for o in found])
        return
    _print_orders(
        ("order", "stage", "customer", "attempts", "last error", "updated"),
        [
            (
                o.order_id,
                o.stage,
                o.customer_email or "",
                str(o.attempts),
                (o.last_error or "")[:60],
                o.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
            )
            for o in found
        ],
    )


@app.command("show")
def orders_show(
    order_id: Annotated[str, typer.Argument(help="Order id, workflow id or provider's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """One order: its row, the workflow's live status, the audit trail and the e-mails."""
    from db.order_views import describe_order
    from workflows.client import connect
    from workflows.purchase_client import live_status

    _check_order_keys(order_id)
    settings = load_settings()

    async def _show() -> dict[str, Any] | None:
        try:
            client = await connect(settings)
        except Exception:
            client = None  # the database still tells the story
        described = await with_conn(settings, lambda conn: describe_order(conn, order_id))
        if described is not None:
            described["workflow"] = await live_status(client, described["order"]["order_id"])
        return described

    shown = asyncio.run(_show())
    if shown is None:
        err_console.print(f"[red]no order {order_id}[/red]")
        raise typer.Exit(1)
    if as_json:
        print_json(shown)
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


@app.command("retry")
def orders_retry(
    order_ids: Annotated[list[str] | None, typer.Argument(help="Orders to retry now.")] = None,
    stage: Annotated[str | None, typer.Option("--stage", help="Every order in a stage.")] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why, for the record.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Signal `retry`: cut any wait short and run the failed step again (exit 1 if any fails).

    Each retry sent is recorded with who sent it (ENTREGA_OPERATOR or the OS user) and why."""
    from contracts.purchases import STAGES
    from db import orders
    from workflows.client import connect
    from workflows.purchase_client import request_retry

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
        for workflow_id in await with_conn(settings, targets):
            try:
                await request_retry(client, workflow_id)
                results[workflow_id] = "retry requested"
            except Exception as exc:
                results[workflow_id] = f"failed: {exc}"
                continue
            await with_conn(settings, recorder("retry", workflow_id, reason))
        return results

    results = asyncio.run(_retry())
    if as_json:
        print_json(results)
    else:
        for workflow_id, outcome in results.items():
            console.print(f"{workflow_id}: {outcome}")
        if not results:
            console.print("no orders to retry")
    if any(outcome.startswith("failed") for outcome in results.values()):
        raise typer.Exit(1)


@app.command("cancel")
def orders_cancel(
    order_id: Annotated[str, typer.Argument(help="Order id, workflow id or provider's id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why, for the record (required).")],
) -> None:
    """End an order that will never succeed: it becomes `cancelled` at its next wait.

    A completed, revoked or cancelled order is refused (exit 1): cancelling never takes access
    away; refund the payment at the provider for that."""
    from temporalio.service import RPCError, RPCStatusCode

    from contracts.purchases import CancelRequest
    from db import orders
    from db.order_views import FINISHED_STAGES
    from workflows.client import connect
    from workflows.purchase_client import request_cancel

    if not reason.strip():
        err_console.print("[red]--reason must say why[/red]")
        raise typer.Exit(2)
    settings = load_settings()

    async def _cancel() -> str | None:
        order = await with_conn(settings, lambda conn: orders.get_order(conn, order_id))
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
        await with_conn(
            settings, lambda conn: record_cli_action(conn, "cancel", workflow_id, reason)
        )
        console.print(f"cancel sent to {workflow_id}", highlight=False)
        return None

    problem = asyncio.run(_cancel())
    if problem:
        err_console.print(f"[red]{problem}[/red]", soft_wrap=True)
        raise typer.Exit(1)
