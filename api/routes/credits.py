"""Shipments and credits: a user spends their own credits; operators grant purchased ones."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header
from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    field_validator,
)

from api import validation
from api.auth import CurrentUser, Operator
from api.deps import PoolDep, SpendsDep
from api.errors import ApiError, responses
from contracts.errors import ErrorCode
from db import credits, operations
from telemetry import events

router = APIRouter(prefix="/api/v1", tags=["credits"])


def _key_reused() -> ApiError:
    return ApiError(ErrorCode.IDEMPOTENCY_KEY_REUSED)


def _profile_not_found() -> ApiError:
    return ApiError(ErrorCode.PROFILE_NOT_FOUND)


class ShipmentRequest(BaseModel):
    # Numbers must be JSON numbers (strict): "500" is a client bug, not a weight.
    recipient_name: str = Field(
        min_length=1,
        max_length=200,
        strict=True,
        description="Not blank; no control, invisible or bidi characters",
    )
    destination_postal_code: str = Field(
        description="CEP: 8 ASCII digits, hyphen after the fifth optional",
        strict=True,
        json_schema_extra={"pattern": validation.CEP_PATTERN},
    )
    weight_grams: int = Field(ge=1, le=30000, strict=True)
    reference: str | None = Field(
        default=None,
        max_length=200,
        strict=True,
        description="No control, invisible or bidi characters",
    )

    # Wrap validators: pydantic checks type and bounds, the message a person reads is ours.
    @field_validator("recipient_name", mode="wrap")
    @classmethod
    def _recipient(cls, value: object, handler: ValidatorFunctionWrapHandler) -> str:
        try:
            name = str(handler(value)).strip()
        except ValidationError:
            name = ""
        if not name:
            raise ValueError("Informe o nome do destinatário (até 200 caracteres)")
        return validation.check_person_name(name)

    @field_validator("destination_postal_code", mode="wrap")
    @classmethod
    def _cep(cls, value: object, handler: ValidatorFunctionWrapHandler) -> str:
        try:
            cep = str(handler(value))
        except ValidationError:
            cep = ""
        return validation.normalize_cep(cep)

    @field_validator("weight_grams", mode="wrap")
    @classmethod
    def _weight(cls, value: object, handler: ValidatorFunctionWrapHandler) -> int:
        try:
            return int(handler(value))
        except ValidationError:
            raise ValueError(
                "Peso inválido: informe um número inteiro de 1 a 30000 gramas"
            ) from None

    @field_validator("reference", mode="wrap")
    @classmethod
    def _reference(cls, value: object, handler: ValidatorFunctionWrapHandler) -> str | None:
        try:
            reference: str | None = handler(value)
        except ValidationError:
            raise ValueError("Referência inválida: use um texto de até 200 caracteres") from None
        if reference is not None and validation.refused_character(reference) is not None:
            raise ValueError("A referência contém caracteres de controle ou invisíveis")
        return reference

    def fingerprint(self) -> str:
        """Hash of the request as understood (CEP normalized): equal requests, equal hashes."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()


class ShipmentCreated(BaseModel):
    shipment_id: uuid.UUID
    credit: credits.Credit
    balance: credits.Balance


_EXPIRY_MESSAGES = {
    "format": "Data de validade inválida: use AAAA-MM-DD ou data e hora ISO 8601 com fuso",
    "no_zone": "Informe o fuso horário da data e hora (ex.: 2026-12-31T23:59:59-03:00)",
    "past": "A data de validade deve estar no futuro",
}


def _expiry(value: object) -> datetime | None:
    """The JSON value of `expires_at`, read by the same rules as `entrega credits grant`."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(_EXPIRY_MESSAGES["format"])
    try:
        return credits.parse_expiry(value)
    except credits.InvalidExpiry as invalid:
        raise ValueError(_EXPIRY_MESSAGES[invalid.reason]) from None


class CreditPurchaseRequest(BaseModel):
    profile_id: uuid.UUID
    credits_amount: int = Field(ge=1, le=1_000_000, strict=True)
    expires_at: Annotated[
        datetime | None,
        BeforeValidator(_expiry),
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "string", "format": "date"},
                    {"type": "string", "format": "date-time"},
                    {"type": "null"},
                ]
            }
        ),
        Field(
            description="YYYY-MM-DD (valid through that day, UTC) or an ISO 8601 timestamp "
            "with its time zone; omitted: never expires"
        ),
    ] = None

    @field_validator("credits_amount", mode="wrap")
    @classmethod
    def _amount(cls, value: object, handler: ValidatorFunctionWrapHandler) -> int:
        try:
            return int(handler(value))
        except ValidationError:
            raise ValueError(
                "Quantidade inválida: informe um número inteiro de 1 a 1000000"
            ) from None


@router.post("/shipments", status_code=201, responses=responses(401, 402, 404))
async def create_shipment(
    body: ShipmentRequest,
    user: CurrentUser,
    spends: SpendsDep,
    idempotency_key: Annotated[
        str,
        Header(
            pattern=validation.IDEMPOTENCY_KEY_PATTERN,
            description="1 to 200 visible ASCII characters; a replay answers the first 201",
        ),
    ],
) -> ShipmentCreated:
    """Create a shipment and spend one credit for it, in one transaction."""
    try:
        # One statement, its own transaction, shared with the spends of this profile waiting at
        # the same time: the profile's lock is released by a commit on the server, with no round
        # trip to this process while it is held.
        spent = await spends.spend(
            credits.SpendRequest(
                auth_user_id=user.auth_user_id,
                idempotency_key=idempotency_key,
                request_hash=body.fingerprint(),
                recipient_name=body.recipient_name,
                destination_postal_code=body.destination_postal_code,
                weight_grams=body.weight_grams,
                reference=body.reference,
            )
        )
    except credits.InsufficientCredits:
        events.spend_refused(ErrorCode.INSUFFICIENT_CREDITS, str(user.auth_user_id))
        raise ApiError(ErrorCode.INSUFFICIENT_CREDITS) from None
    except credits.IdempotencyKeyReused:
        raise _key_reused() from None
    except credits.ProfileNotFound:
        raise _profile_not_found() from None
    if not spent.replayed:
        events.credit_spent(spent.credit.source_type, str(user.auth_user_id))
    return ShipmentCreated(
        shipment_id=spent.shipment_id, credit=spent.credit, balance=spent.balance
    )


@router.get("/credits", responses=responses(401, 404))
async def get_credits(user: CurrentUser, pool: PoolDep) -> credits.Balance:
    """The caller's balance: monthly credits of the current period and purchased credits."""
    async with pool.connection() as conn:
        profile_id = await credits.profile_id_for_user(conn, user.auth_user_id)
        found = await credits.balance(conn, profile_id) if profile_id else None
    if found is None:
        raise _profile_not_found()
    return found


@router.post(
    "/admin/credit-purchases",
    status_code=201,
    responses=responses(401, 404, 409),
)
async def create_credit_purchase(
    body: CreditPurchaseRequest,
    pool: PoolDep,
    operator: Operator,
    idempotency_key: Annotated[
        str | None,
        Header(
            pattern=validation.IDEMPOTENCY_KEY_PATTERN,
            description="Optional, 1 to 200 visible ASCII characters: a replay answers the "
            "first grant; the key with another body is 422 `idempotency_key_reused`",
        ),
    ] = None,
) -> credits.CreditPurchase:
    """Grant purchased credits to a profile with a subscription (operators only)."""
    try:
        async with pool.connection() as conn, conn.transaction():
            if idempotency_key is not None:
                granted, fresh = await credits.grant_credits_once(
                    conn,
                    idempotency_key=idempotency_key,
                    profile_id=body.profile_id,
                    credits_amount=body.credits_amount,
                    expires_at=body.expires_at,
                )
                if not fresh:
                    return granted  # a replay: the first grant is already on the record
            else:
                granted = await credits.grant_credits(
                    conn,
                    profile_id=body.profile_id,
                    credits_amount=body.credits_amount,
                    expires_at=body.expires_at,
                )
            # In the grant's transaction: no grant without its record, and no record without it.
            await operations.record_action(
                conn,
                action="grant",
                target=str(body.profile_id),
                actor=operator,
                via="api",
                details={
                    "purchase_id": str(granted.purchase_id),
                    "credits_amount": body.credits_amount,
                },
            )
        events.operator_action("grant", operator, str(body.profile_id), None)
        return granted
    except credits.IdempotencyKeyReused:
        raise _key_reused() from None
    except credits.ProfileNotFound:
        raise _profile_not_found() from None
    except credits.NoSubscription:
        raise ApiError(ErrorCode.PROFILE_WITHOUT_SUBSCRIPTION) from None
    except credits.CheckoutInProgress:
        raise ApiError(
            ErrorCode.CHECKOUT_IN_PROGRESS,
            message="Há um checkout em andamento para este perfil. "
            "Tente novamente em alguns instantes.",
        ) from None
