"""Signup: registration and checkout, each answered with the outcome of its saga workflow."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.accounts import DUPLICATE_CODES, seal_password
from api import validation
from api.auth import CurrentUser
from api.deps import PoolDep, SettingsDep, get_temporal
from api.errors import ApiError
from db import profiles as db_profiles
from settings import Settings
from workflows import checkout as checkout_workflow
from workflows import registration as registration_workflow
from workflows.checkout import CheckoutWorkflow
from workflows.registration import RegistrationWorkflow
from workflows.signup_types import (
    CheckoutInput,
    CheckoutResult,
    RegistrationInput,
    RegistrationResult,
)

router = APIRouter(tags=["accounts"])

# The documented answers (INTERFACES.md), keyed by the failure type of the saga.
_ANSWERS: dict[str, tuple[int, str]] = {
    "email_exists": (409, "Este e-mail já está cadastrado"),
    "phone_exists": (409, "Este telefone já está cadastrado"),
    "cpf_exists": (409, "Este CPF já está cadastrado"),
    "auth_failed": (502, "Erro ao criar conta de acesso"),
    "registration_failed": (503, "Erro ao criar conta. Tente novamente em alguns instantes."),
    checkout_workflow.REGISTRATION_ROLLED_BACK: (
        502,
        "Erro no processo de registro. Por favor, tente criar sua conta novamente.",
    ),
}
_CHECKOUT_FAILED_PREFIX = "Erro ao criar checkout: "
# How many concurrent registrations of one e-mail a request waits out before giving up.
_MAX_TURNS = 3
# An unfinished checkout attempt this old with no workflow was orphaned by a crashed API process.
_STALE_ATTEMPT_SECONDS = 60.0


# The request field each duplicate is about.
_DUPLICATE_FIELDS = {"email_exists": "email", "phone_exists": "phone", "cpf_exists": "cpfCnpj"}


def _answer(code: str, details: Any = None) -> ApiError:
    status, message = _ANSWERS[code]
    if code in _DUPLICATE_FIELDS:
        details = {"field": _DUPLICATE_FIELDS[code]}
    return ApiError(status, code, message, details)


class RegisterRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    name: str
    email: str
    phone: str
    cpf_cnpj: str = Field(alias="cpfCnpj")
    password: str

    _name = field_validator("name")(validation.normalize_name)
    _email = field_validator("email")(validation.normalize_email)
    _phone = field_validator("phone")(validation.normalize_phone)
    _cpf_cnpj = field_validator("cpf_cnpj")(validation.normalize_cpf_cnpj)
    _password = field_validator("password")(validation.check_password)


class CheckoutRequest(BaseModel):
    plan_id: str = Field(min_length=1)
    billing_type: Literal["BOLETO", "CREDIT_CARD", "PIX", "UNDEFINED"]


def _failure_type(exc: WorkflowFailureError) -> tuple[str | None, str]:
    cause = exc.cause
    if isinstance(cause, ApplicationError):
        return cause.type, cause.message
    return None, str(cause)


async def _outcome(handle: WorkflowHandle[Any, Any], settings: Settings) -> Any:
    """The saga's result; asyncio.TimeoutError when it takes longer than people should wait."""
    return await asyncio.wait_for(handle.result(), settings.signup_answer_timeout_seconds)


@router.post("/api/v1/profiles/register", status_code=201)
async def register(
    body: RegisterRequest, request: Request, settings: SettingsDep, pool: PoolDep
) -> RegistrationResult:
    """Create the auth user and the profile (registration saga, level 1)."""
    # Temporal is reached only after validation: bad input is a 422 even while Temporal is down.
    try:
        temporal = await get_temporal(request)
    except ApiError as exc:
        raise _answer("registration_failed") from exc
    async with pool.connection() as conn:
        # A fast refusal for the obvious duplicate; the unique indexes still decide the races.
        taken = await db_profiles.find_conflict(
            conn, email=body.email, phone=body.phone, cpf_cnpj=body.cpf_cnpj
        )
    if taken:
        raise _answer(DUPLICATE_CODES[taken])
    new = RegistrationInput(
        name=body.name,
        email=body.email,
        phone=body.phone,
        cpf_cnpj=body.cpf_cnpj,
        sealed_password=seal_password(settings, body.password),
    )
    try:
        result: RegistrationResult = await _register(temporal, settings, new)
    except WorkflowFailureError as exc:
        # The providers' own words stay in integration_logs; people get the documented answer.
        code, _ = _failure_type(exc)
        raise _answer(code if code in _ANSWERS else "registration_failed") from exc
    except (TimeoutError, RPCError) as exc:
        raise _answer("registration_failed") from exc
    return result


async def _register(
    temporal: Client, settings: Settings, new: RegistrationInput
) -> RegistrationResult:
    """Start the registration saga of this e-mail and wait for it.

    If one is already running (a concurrent request with the same e-mail), its outcome decides:
    it succeeded, so this one is a duplicate; it failed, so this one may try in its turn.
    """
    workflow_id = registration_workflow.workflow_id(
        new.email, settings.secret("registration_id_key")
    )
    legacy = temporal.get_workflow_handle(registration_workflow.legacy_workflow_id(new.email))
    for _ in range(_MAX_TURNS):
        # A run started before ids were hashed (`registration:<e-mail>`) may still be going: it
        # is a concurrent registration of this e-mail like any other.
        if await _is_running(legacy):
            try:
                await _outcome(legacy, settings)
            except WorkflowFailureError:
                pass
            else:
                raise _answer("email_exists")
        try:
            handle = await temporal.start_workflow(
                RegistrationWorkflow.run,
                new,
                id=workflow_id,
                task_queue=settings.temporal_task_queue,
                # A new run is allowed after any earlier one: after a failure, and also after a
                # success whose account a failed first checkout has since removed.
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            )
        except WorkflowAlreadyStartedError:
            running = temporal.get_workflow_handle(workflow_id)
            try:
                await _outcome(running, settings)
            except WorkflowFailureError:
                continue
            raise _answer("email_exists") from None
        result: RegistrationResult = await _outcome(handle, settings)
        return result
    raise _answer("registration_failed")


async def _is_running(handle: WorkflowHandle[Any, Any]) -> bool:
    try:
        description = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return description.status == WorkflowExecutionStatus.RUNNING


async def _number_attempt(
    conn: Any, temporal: Client, profile_id: uuid.UUID, plan_id: str
) -> db_profiles.CheckoutAttempt:
    """Record the next attempt, or 409 while another one runs. An attempt left unfinished by an
    API process that died before starting its workflow would block the profile forever, so an
    old unfinished attempt with no workflow behind it is closed first."""
    try:
        return await db_profiles.start_checkout_attempt(conn, profile_id, plan_id)
    except db_profiles.CheckoutInProgress:
        stale = await db_profiles.stale_checkout_attempt(conn, profile_id, _STALE_ATTEMPT_SECONDS)
        if stale is None or await _workflow_exists(temporal, stale):
            raise ApiError(
                409, "checkout_in_progress", "Já existe um checkout em andamento para esta conta"
            ) from None
        await db_profiles.finish_checkout_attempt(conn, stale, "rolled_back")
        return await db_profiles.start_checkout_attempt(conn, profile_id, plan_id)


async def _workflow_exists(temporal: Client, workflow_id: str) -> bool:
    try:
        await temporal.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


@router.post("/api/v1/checkout/create", status_code=201)
async def create_checkout(
    body: CheckoutRequest,
    request: Request,
    user: CurrentUser,
    settings: SettingsDep,
    pool: PoolDep,
) -> CheckoutResult:
    """Create the Asaas customer (if needed) and subscription (checkout saga, level 2 or 3)."""
    temporal = await get_temporal(request)
    async with pool.connection() as conn:
        profile = await db_profiles.get_by_auth_user_id(conn, user.auth_user_id)
        if profile is None:
            raise ApiError(404, "profile_not_found", "Perfil não encontrado")
        plan = await db_profiles.get_plan(conn, body.plan_id)
        if plan is None:
            raise ApiError(
                422,
                "validation_error",
                "Dados inválidos",
                [{"field": "plan_id", "message": "Plano inexistente", "type": "value_error"}],
            )
        attempt = await _number_attempt(conn, temporal, profile.profile_id, plan.plan_id)
    checkout = CheckoutInput(
        profile_id=profile.profile_id,
        auth_user_id=profile.auth_user_id,
        name=profile.name,
        email=profile.email,
        phone=profile.phone,
        cpf_cnpj=profile.cpf_cnpj,
        asaas_customer_id=profile.asaas_customer_id,
        subscription_id=profile.subscription_id,
        plan_id=plan.plan_id,
        plan_name=plan.name,
        price_cents=plan.price_cents,
        cycle=plan.cycle,
        billing_type=body.billing_type,
    )
    try:
        handle = await temporal.start_workflow(
            CheckoutWorkflow.run,
            checkout,
            id=attempt.workflow_id,
            task_queue=settings.temporal_task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except RPCError as exc:
        async with pool.connection() as conn:
            await db_profiles.finish_checkout_attempt(conn, attempt.workflow_id, "rolled_back")
        raise ApiError(
            503, "checkout_unavailable", "Checkout indisponível. Tente novamente em instantes."
        ) from exc
    try:
        result: CheckoutResult = await _outcome(handle, settings)
    except WorkflowFailureError as exc:
        code, message = _failure_type(exc)
        if code == checkout_workflow.REGISTRATION_ROLLED_BACK:
            raise _answer(code, message) from exc
        raise ApiError(
            502, checkout_workflow.CHECKOUT_FAILED, _CHECKOUT_FAILED_PREFIX + message, message
        ) from exc
    except TimeoutError as exc:
        raise ApiError(
            503,
            "checkout_pending",
            "Checkout ainda em processamento. Tente novamente em alguns instantes.",
            {"workflow_id": attempt.workflow_id},
        ) from exc
    return result
