"""`entrega reconcile`: orphans and duplicates, or the providers' reconciliation now."""

from __future__ import annotations

import asyncio
from typing import Any

import typer

from cli.common import (
    console,
    err_console,
    load_settings,
    print_json,
    require_database_url,
    temporal_client,
)
from settings import Settings

app = typer.Typer()


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
        busy = await running_sagas(await temporal_client(settings))
        pool = await open_pool(settings.database_url or "", max_size=2)
        try:
            async with open_provider_clients(settings) as providers:
                found = await find_orphans(pool, providers, grace=min_age, busy=busy)
                return [o.model_dump() for o in found]
        finally:
            await pool.close()

    orphans = asyncio.run(_find())
    if json_output:
        print_json(orphans)
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

    from contracts.reconcile import SCHEDULE_ASAAS, SCHEDULE_MERCADOPAGO, ReconcileInput
    from workflows.reconcile_asaas import ReconcileAsaasWorkflow
    from workflows.reconcile_mercadopago import ReconcileMercadoPagoWorkflow

    async def _run() -> list[dict[str, Any]]:
        client = await temporal_client(settings)
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
        print_json(results)
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
