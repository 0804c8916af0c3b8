"""Inputs, outputs and status of the signup sagas, and what their steps exchange.

Plain pydantic models in a module of their own, which the workflows import passed through the
sandbox: the classes are built once per process, not again for every workflow run (Temporal's
advice for data models).
"""

from __future__ import annotations

import hashlib
import hmac
import uuid

from pydantic import BaseModel

# Activity names of the saga steps and compensations (`AccountActivities`).
CREATE_AUTH_USER = "accounts.create_auth_user"
DELETE_AUTH_USER = "accounts.delete_auth_user"
CREATE_PROFILE = "accounts.create_profile"
DELETE_PROFILE = "accounts.delete_profile"
ENSURE_ASAAS_CUSTOMER = "accounts.ensure_asaas_customer"
DELETE_ASAAS_CUSTOMER = "accounts.delete_asaas_customer"
SAVE_ASAAS_CUSTOMER = "accounts.save_asaas_customer"
CLEAR_ASAAS_CUSTOMER = "accounts.clear_asaas_customer"
CREATE_SUBSCRIPTION = "accounts.create_subscription"
DELETE_SUBSCRIPTION = "accounts.delete_subscription"
CANCEL_PREVIOUS_SUBSCRIPTION = "accounts.cancel_previous_subscription"
SAVE_SUBSCRIPTION = "accounts.save_subscription"
CLEAR_SUBSCRIPTION = "accounts.clear_subscription"
FINISH_CHECKOUT = "accounts.finish_checkout"


def registration_workflow_id(email: str, key: str) -> str:
    """`registration:<HMAC-SHA256 of the normalized e-mail>`: two registrations of one e-mail meet
    in one id, and the id (visible to whoever reads Temporal) holds no e-mail. `key` is
    REGISTRATION_ID_KEY, which must never change: a new key would split old and new ids."""
    digest = hmac.new(key.encode(), email.encode(), hashlib.sha256).hexdigest()
    return f"registration:{digest}"


def legacy_registration_workflow_id(email: str) -> str:
    """The id registrations had before (`registration:<e-mail>`); such runs may still exist."""
    return f"registration:{email}"


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


# --- what the saga steps and compensations exchange ---------------------------------------------


class NewAuthUser(BaseModel):
    email: str
    phone: str
    name: str
    sealed_password: str
    # Written into the user's metadata: proves, on a retry, that an existing user is ours.
    registration_key: str


class AuthUserRef(BaseModel):
    auth_user_id: uuid.UUID


class AuthUserCleanup(BaseModel):
    """Delete by id when known; otherwise by e-mail, only a user this registration created."""

    auth_user_id: uuid.UUID | None = None
    email: str | None = None
    registration_key: str | None = None


class NewProfile(BaseModel):
    auth_user_id: uuid.UUID
    name: str
    email: str
    phone: str
    cpf_cnpj: str


class ProfileRef(BaseModel):
    profile_id: uuid.UUID
    auth_user_id: uuid.UUID


class CustomerSpec(BaseModel):
    profile_id: uuid.UUID
    name: str
    email: str
    phone: str
    cpf_cnpj: str


class CustomerRef(BaseModel):
    customer_id: str
    created: bool


class CustomerCleanup(BaseModel):
    profile_id: uuid.UUID
    customer_id: str | None = None


class SavedCustomer(BaseModel):
    profile_id: uuid.UUID
    customer_id: str | None


class SubscriptionSpec(BaseModel):
    customer_id: str
    billing_type: str
    price_cents: int
    cycle: str
    description: str
    external_reference: str  # the checkout workflow id: one subscription per attempt


class SubscriptionRef(BaseModel):
    subscription_id: str


class SubscriptionCleanup(BaseModel):
    external_reference: str
    subscription_id: str | None = None


class SavedSubscription(BaseModel):
    profile_id: uuid.UUID
    workflow_id: str
    subscription_id: str | None = None
    # What the profile held before this attempt: undoing the save restores it.
    previous_subscription_id: str | None = None


class PreviousSubscription(BaseModel):
    """The subscription a later checkout replaces (the profile's before the attempt)."""

    subscription_id: str


class AttemptOutcome(BaseModel):
    workflow_id: str
    outcome: str
