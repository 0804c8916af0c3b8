"""`entrega sagas`: signup sagas that had to be undone, and retrying the parked ones."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer

from cli.common import (
    console,
    err_console,
    load_settings,
    print_json,
    recorder,
    require_database_url,
    temporal_client,
    with_conn,
)
from settings import Settings

app = typer.Typer(help="Registration and checkout sagas that needed undoing.")

_SIGNUP_TYPES = "WorkflowType IN ('RegistrationWorkflow', 'CheckoutWorkflow')"


def _saga_query(stage: str | None) -> str:
    if stage:
        return f"{_SIGNUP_TYPES} AND EntregaStage = '{stage.replace(chr(39), '')}'"
    return f"{_SIGNUP_TYPES} AND EntregaStage IS NOT NULL"


def _registration_ids(settings: Settings, email: str) -> list[str]:
    """The workflow ids a registration of `email` may have: the keyed hash, and the e-mail
    itself for runs started before ids were hashed. Exit 2 if it is no e-mail address."""
    from api.validation import normalize_email
    from contracts.signups import legacy_registration_workflow_id, registration_workflow_id

    try:
        normalized = normalize_email(email)
    except ValueError:
        err_console.print(f"not an e-mail address: {email!r}", highlight=False)
        raise typer.Exit(2) from None
    return [
        registration_workflow_id(normalized, settings.secret("registration_id_key")),
        legacy_registration_workflow_id(normalized),
    ]


def _email_query(settings: Settings, email: str, stage: str | None) -> str:
    ids = " OR ".join(
        f"WorkflowId = '{i.replace(chr(39), '')}'" for i in _registration_ids(settings, email)
    )
    query = f"WorkflowType = 'RegistrationWorkflow' AND ({ids})"
    if stage:
        query += f" AND EntregaStage = '{stage.replace(chr(39), '')}'"
    return query


@app.command("list")
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

    from contracts.search_attributes import STAGE

    settings = load_settings()

    async def _list() -> list[dict[str, str | None]]:
        client = await temporal_client(settings)
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
        print_json(rows)
    else:
        for row in rows:
            console.print(f"{row['stage']:<20} {row['status']:<11} {row['workflow_id']}")
        console.print(f"{len(rows)} saga(s)")
    raise typer.Exit(0)


@app.command("retry")
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
    reason: Annotated[str | None, typer.Option("--reason", help="Why, for the record.")] = None,
) -> None:
    """Send `retry` to parked sagas: their failed compensation runs again.

    Each id gets one line: sent, or why not (no such saga, not parked); exit 1 if any was not.
    Each retry sent is recorded in operator_actions with who sent it (ENTREGA_OPERATOR or the OS
    user) and why, as `entrega orders retry` records its own."""
    from temporalio.client import Client, WorkflowExecutionStatus
    from temporalio.service import RPCError, RPCStatusCode

    from contracts.search_attributes import STAGE

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
            require_database_url(settings)  # where the retry is recorded, before it is sent
            await handle.signal("retry")
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return "no such saga"
            return f"failed: {exc.message}"
        return None

    async def _retry() -> bool:
        client = await temporal_client(settings)
        targets = [await _resolve_saga_id(client, settings, i) for i in workflow_ids or []]
        if stage:
            in_stage = [wf.id async for wf in client.list_workflows(_saga_query(stage))]
            if not in_stage:
                console.print(f"no saga in stage {stage}")
            targets += in_stage
        all_sent = True
        for workflow_id in targets:
            why_not = await _retry_one(client, workflow_id)
            if why_not is None:
                await with_conn(settings, recorder("retry", workflow_id, reason))
                console.print(f"retry sent to {workflow_id}", highlight=False)
            else:
                all_sent = False
                console.print(f"{workflow_id}: {why_not}", highlight=False, soft_wrap=True)
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
