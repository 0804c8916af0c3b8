"""Signup: registration and checkout, each answered with the outcome of its saga workflow."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from temporalio.service import RPCError

from activities.accounts import seal_password
from api import rate_limits, validation
from api.auth import CurrentUser
from api.deps import PoolDep, SettingsDep, get_temporal
from api.errors import ApiError, message_of, responses
from contracts.errors import DUPLICATE_CODES, ErrorCode
from contracts.signups import (
    CheckoutInput,
    CheckoutResult,
    RegistrationInput,
    RegistrationResult,
)
from db import profiles as db_profiles
from workflows import signup_client

router = APIRouter(prefix="/api/v1", tags=["accounts"])

# The failure types a registration saga answers with as they are (docs/interfaces.md); any
# other is `registration_failed`.
_REGISTRATION_ANSWERS = frozenset(
    {
        ErrorCode.EMAIL_EXISTS,
        ErrorCode.PHONE_EXISTS,
        ErrorCode.CPF_EXISTS,
        ErrorCode.AUTH_FAILED,
        ErrorCode.REGISTRATION_FAILED,
        ErrorCode.REGISTRATION_ROLLED_BACK,
        ErrorCode.ROLLBACK_PENDING,
    }
)
# The level-2 answer ends with what went wrong on a line of its own, as the old system's did.
_DETAILS_LINE = "\nDetalhes: "
# The request field each duplicate is about.
_DUPLICATE_FIELDS = {
    ErrorCode.EMAIL_EXISTS: "email",
    ErrorCode.PHONE_EXISTS: "phone",
    ErrorCode.CPF_EXISTS: "cpfCnpj",
}


def _answer(code: ErrorCode) -> ApiError:
    field = _DUPLICATE_FIELDS.get(code)
    return ApiError(code, {"field": field} if field else None)


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


@router.post("/profiles/register", status_code=201, responses=responses(409, 429, 502, 503))
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
        raise _answer(ErrorCode.REGISTRATION_FAILED) from exc
    async with pool.connection() as conn:
        # A fast refusal for the obvious duplicate; the unique indexes still decide the races.
        taken = await db_profiles.find_conflict(
            conn, email=body.email, phone=body.phone, cpf_cnpj=body.cpf_cnpj
        )
        undoing = (
            await db_profiles.unfinished_checkout_of_email(conn, body.email)
            if taken == "email"
            else None
        )
    if undoing and await signup_client.rolling_back_account(temporal, undoing):
        # The account of this e-mail is being removed by its failed first checkout.
        raise _answer(ErrorCode.ROLLBACK_PENDING)
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
        return await signup_client.register(temporal, settings, new)
    except signup_client.SagaFailed as failed:
        # The providers' own words stay in integration_logs; people get the documented answer.
        answer = ErrorCode.REGISTRATION_FAILED
        if failed.code in _REGISTRATION_ANSWERS:
            answer = ErrorCode(failed.code)
        raise _answer(answer) from failed
    except signup_client.EmailTaken as exc:
        raise _answer(ErrorCode.EMAIL_EXISTS) from exc
    except signup_client.RollbackPending as exc:
        raise _answer(ErrorCode.ROLLBACK_PENDING) from exc
    except (signup_client.NoTurnLeft, TimeoutError, RPCError) as exc:
        raise _answer(ErrorCode.REGISTRATION_FAILED) from exc


@router.post("/checkout/create", status_code=201, responses=responses(401, 404, 409, 429, 502, 503))
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
            raise ApiError(ErrorCode.PROFILE_NOT_FOUND)
        plan = await db_profiles.get_plan(conn, body.plan_id)
        if plan is None:
            raise ApiError(
                ErrorCode.VALIDATION_ERROR,
                [{"field": "plan_id", "message": "Plano inexistente", "type": "value_error"}],
            )
        try:
            attempt, adopted = await db_profiles.claim_checkout_attempt(
                conn, profile.profile_id, plan.plan_id, body.billing_type
            )
        except db_profiles.CheckoutInProgress as exc:
            raise ApiError(ErrorCode.CHECKOUT_IN_PROGRESS) from exc
        # Read again now that the attempt is ours to run: no other attempt can change the
        # profile until it finishes, and the one before may have finished just now.
        profile = await db_profiles.get_profile(conn, profile.profile_id)
        if attempt.plan_id != plan.plan_id:  # an adopted attempt runs what it was numbered for
            plan = await db_profiles.get_plan(conn, attempt.plan_id)
    if profile is None or plan is None:
        raise ApiError(ErrorCode.PROFILE_NOT_FOUND)
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
    try:
        return await signup_client.checkout(
            temporal, settings, attempt.workflow_id, checkout, adopted=adopted
        )
    except signup_client.AttemptAlreadyStarted as exc:
        raise ApiError(ErrorCode.CHECKOUT_IN_PROGRESS) from exc
    except signup_client.RollbackPending as exc:
        raise _answer(ErrorCode.ROLLBACK_PENDING) from exc
    except signup_client.AttemptNotStarted as exc:
        raise ApiError(ErrorCode.CHECKOUT_UNAVAILABLE) from exc
    except signup_client.SagaFailed as failed:
        message = failed.message
        if failed.code == ErrorCode.REGISTRATION_ROLLED_BACK:
            rolled_back = ErrorCode.REGISTRATION_ROLLED_BACK
            text = message_of(rolled_back) + _DETAILS_LINE + message
            raise ApiError(rolled_back, message, message=text) from failed
        text = f"{message_of(ErrorCode.CHECKOUT_FAILED)}: {message}"
        raise ApiError(ErrorCode.CHECKOUT_FAILED, message, message=text) from failed
    except TimeoutError as exc:
        raise ApiError(ErrorCode.CHECKOUT_PENDING, {"workflow_id": attempt.workflow_id}) from exc
