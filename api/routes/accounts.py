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
from api import rate_limits, validation
from api.auth import CurrentUser
from api.deps import PoolDep, SettingsDep, get_temporal
from api.errors import ApiError, responses
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

# The documented answers (docs/interfaces.md), keyed by the failure type of the saga.
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
# The level-2 answer ends with what went wrong on a line of its own, as the old system's did.
_DETAILS_LINE = "\nDetalhes: "
# How many concurrent registrations of one e-mail a request waits out before giving up.
_MAX_TURNS = 3


# The request field each duplicate is about.
_DUPLICATE_FIELDS = {"email_exists": "email", "phone_exists": "phone", "cpf_exists": "cpfCnpj"}


def _answer(code: str, details: Any = None) -> ApiError:
    status, message = _ANSWERS[code]
    if code in _DUPLICATE_FIELDS:
        details = {"field": _DUPLICATE_FIELDS[code]}
    return ApiError(status, code, message, details)


class RegisterRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    name: str = Field(
        description="2 to 120 characters once spaces are collapsed; no control, invisible or "
        "bidi characters"
    )
    email: str = Field(description="A valid e-mail address (stored lower-cased)")
    phone: str = Field(description="A valid Brazilian number with DDD; +55 assumed")
    cpf_cnpj: str = Field(
        alias="cpfCnpj", description="A CPF (11 digits) or CNPJ (14) with valid check digits"
    )
    password: str = Field(
        description="8+ characters with a letter and a digit, at most 72 bytes in UTF-8, no "
        "control characters"
    )

    _name = field_validator("name")(validation.normalize_name)
    _email = field_validator("email")(validation.normalize_email)
    _phone = field_validator("phone")(validation.normalize_phone)
    _cpf_cnpj = field_validator("cpf_cnpj")(validation.normalize_cpf_cnpj)
    _password = field_validator("password")(validation.check_password)


class CheckoutRequest(BaseModel):
    plan_id: validation.PlanId
    billing_type: Literal["BOLETO", "CREDIT_CARD", "PIX", "UNDEFINED"]


def _failure_type(exc: WorkflowFailureError) -> tuple[str | None, str]:
    cause = exc.cause
    if isinstance(cause, ApplicationError):
        return cause.type, cause.message
    return None, str(cause)


async def _outcome(handle: WorkflowHandle[Any, Any], settings: Settings) -> Any:
    """The saga's result; asyncio.TimeoutError when it takes longer than people should wait."""
    return await asyncio.wait_for(
        handle.result(), settings.signup_answer_timeout_seconds.total_seconds()
    )


@router.post("/api/v1/profiles/register", status_code=201, responses=responses(409, 429, 502, 503))
async def register(
    body: RegisterRequest, request: Request, settings: SettingsDep, pool: PoolDep
) -> RegistrationResult:
    """Create the auth user and the profile (registration saga, level 1)."""
    await rate_limits.enforce(
        pool,
        settings.rate_limit_window_seconds,
        [
            (
                "register:address",
                rate_limits.client_address(request),
                settings.registration_rate_per_address,
            ),
            ("register:email", body.email, settings.registration_rate_per_email),
        ],
    )
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


async def _claim_attempt(
    conn: Any, profile_id: uuid.UUID, plan_id: str, billing_type: str
) -> tuple[db_profiles.CheckoutAttempt, bool]:
    """The attempt this request runs: a newly numbered one, or (True) the profile's attempt
    already in flight, which this request may only start if nobody has (see `_start_attempt`)."""
    for _ in range(2):
        try:
            return await db_profiles.start_checkout_attempt(
                conn, profile_id, plan_id, billing_type
            ), False
        except db_profiles.CheckoutInProgress:
            pending = await db_profiles.unfinished_checkout_attempt(conn, profile_id)
            if pending is not None:
                return pending, True
            # It finished between the two statements: number the next one.
    raise ApiError(
        409, "checkout_in_progress", "Já existe um checkout em andamento para esta conta"
    )


async def _start_attempt(
    temporal: Client,
    settings: Settings,
    attempt: db_profiles.CheckoutAttempt,
    checkout: CheckoutInput,
    *,
    adopted: bool,
) -> WorkflowHandle[Any, Any]:
    """Start the attempt's one workflow. Temporal's workflow id, not the clock, decides who
    runs an attempt: whichever request starts `checkout:<profile>:<n>` first. So a request that
    numbered the attempt but stalled (or died) before starting it never leads to two sagas: a
    later request starts that same attempt (adopting it), and the stalled one, when it wakes,
    finds it started and waits for its outcome. A later request that finds the attempt already
    started answers 409."""
    try:
        return await temporal.start_workflow(
            CheckoutWorkflow.run,
            checkout,
            id=attempt.workflow_id,
            task_queue=settings.temporal_task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        )
    except WorkflowAlreadyStartedError:
        if adopted:
            raise ApiError(
                409, "checkout_in_progress", "Já existe um checkout em andamento para esta conta"
            ) from None
        # Our own attempt, started by a request that adopted it: its outcome is ours.
        return temporal.get_workflow_handle_for(CheckoutWorkflow.run, attempt.workflow_id)
    except RPCError as exc:
        # It may have started anyway: the attempt stays open, and the next request either
        # starts it or finds it running.
        raise ApiError(
            503, "checkout_unavailable", "Checkout indisponível. Tente novamente em instantes."
        ) from exc


@router.post(
    "/api/v1/checkout/create", status_code=201, responses=responses(401, 404, 409, 429, 502, 503)
)
async def create_checkout(
    body: CheckoutRequest,
    request: Request,
    user: CurrentUser,
    settings: SettingsDep,
    pool: PoolDep,
) -> CheckoutResult:
    """Create the Asaas customer (if needed) and subscription (checkout saga, level 2 or 3)."""
    await rate_limits.enforce(
        pool,
        settings.rate_limit_window_seconds,
        [
            (
                "checkout:address",
                rate_limits.client_address(request),
                settings.checkout_rate_per_address,
            ),
            ("checkout:user", str(user.auth_user_id), settings.checkout_rate_per_user),
        ],
    )
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
        attempt, adopted = await _claim_attempt(
            conn, profile.profile_id, plan.plan_id, body.billing_type
        )
        # Read again now that the attempt is ours to run: no other attempt can change the
        # profile until it finishes, and the one before may have finished just now.
        profile = await db_profiles.get_profile(conn, profile.profile_id)
        if attempt.plan_id != plan.plan_id:  # an adopted attempt runs what it was numbered for
            plan = await db_profiles.get_plan(conn, attempt.plan_id)
    if profile is None or plan is None:
        raise ApiError(404, "profile_not_found", "Perfil não encontrado")
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
        billing_type=attempt.billing_type or body.billing_type,
    )
    handle = await _start_attempt(temporal, settings, attempt, checkout, adopted=adopted)
    try:
        result: CheckoutResult = await _outcome(handle, settings)
    except WorkflowFailureError as exc:
        code, message = _failure_type(exc)
        if code == checkout_workflow.REGISTRATION_ROLLED_BACK:
            status, text = _ANSWERS[code]
            raise ApiError(status, code, text + _DETAILS_LINE + message, message) from exc
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
