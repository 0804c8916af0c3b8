"""Inputs, outputs and status of the signup sagas.

Plain pydantic models in a module of their own, which the workflows import passed through the
sandbox: the classes are built once per process, not again for every workflow run (Temporal's
advice for data models).
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel


class SagaStatus(BaseModel):
    stage: str
    step: str | None
    last_error: str | None
    compensations_pending: list[str]


class RegistrationInput(BaseModel):
    name: str
    email: str
    phone: str
    cpf_cnpj: str
    sealed_password: str
    # Names the request that started the run, so that its `outcome` update can tell that request
    # from a concurrent registration of the same e-mail (absent in runs started before).
    request_id: str | None = None


class RegistrationResult(BaseModel):
    profile_id: uuid.UUID
    auth_user_id: uuid.UUID


class CheckoutInput(BaseModel):
    """The profile as it was when the attempt was numbered, and what to subscribe it to."""

    profile_id: uuid.UUID
    auth_user_id: uuid.UUID
    name: str
    email: str
    phone: str
    cpf_cnpj: str
    asaas_customer_id: str | None
    subscription_id: str | None
    plan_id: str
    plan_name: str
    price_cents: int
    cycle: str
    billing_type: str

    @property
    def is_first_attempt(self) -> bool:
        return self.asaas_customer_id is None and self.subscription_id is None


class CheckoutResult(BaseModel):
    asaas_customer_id: str
    subscription_id: str
