"""The steps and compensations of the signup sagas: Supabase Auth users, profiles, Asaas customers
and subscriptions. Every one of them is idempotent, because Temporal may run any of them again.

Permanent failures become non-retryable ApplicationErrors whose `type` the workflows branch on;
transient ones are raised as retryable errors (honouring Retry-After) and Temporal retries them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NoReturn, TypeVar
from zoneinfo import ZoneInfo

from psycopg_pool import AsyncConnectionPool
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import credentials
from activities.failures import provider_failure
from contracts import signups as names
from contracts.errors import DUPLICATE_CODES, ErrorCode
from contracts.signups import (
    AttemptOutcome,
    AuthUserCleanup,
    AuthUserRef,
    CustomerCleanup,
    CustomerRef,
    CustomerSpec,
    NewAuthUser,
    NewProfile,
    PreviousSubscription,
    ProfileRef,
    SavedCustomer,
    SavedSubscription,
    SubscriptionCleanup,
    SubscriptionRef,
    SubscriptionSpec,
)
from db import profiles as db_profiles
from providers.asaas import AsaasCustomer, AsaasSubscription
from providers.clients import ProviderClients
from providers.errors import ConflictError, ProviderError
from settings import Settings

BRAZIL = ZoneInfo("America/Sao_Paulo")
# How many customers with our externalReference one compensation deletes at most (duplicates are
# possible because Asaas has no idempotency key).
_MAX_DUPLICATE_CUSTOMERS = 10

Referenced = TypeVar("Referenced", AsaasCustomer, AsaasSubscription)


# --- sealing the password: it travels through Temporal's history only encrypted ---------------


def seal_password(settings: Settings, password: str) -> str:
    return credentials.seal_password(settings.secret("credentials_key"), password)


def unseal_password(settings: Settings, sealed: str) -> str:
    return credentials.unseal_password(settings.secret("credentials_key"), sealed)


def _provider_failure(
    exc: ProviderError, *, permanent_type: ErrorCode = ErrorCode.PROVIDER_REJECTED
) -> NoReturn:
    """Raise the ApplicationError Temporal should see for a provider's error."""
    raise provider_failure(exc, permanent_type=permanent_type) from exc


def keeper(found: Sequence[Referenced]) -> Referenced:
    """Which of several Asaas records carrying one externalReference is the one to keep: the
    oldest by creation date, then the smallest id. A fixed rule, so every place that settles
    duplicates (the saga, the payment workflow, reconcile) keeps the same one."""
    return min(found, key=lambda r: (r.date_created or date.max, r.id))


def _asaas_phone(e164: str) -> str:
    """Asaas takes national digits (DDD + number), not E.164."""
    return e164.removeprefix("+55")


class AccountActivities:
    def __init__(
        self, pool: AsyncConnectionPool, providers: ProviderClients, settings: Settings
    ) -> None:
        self._pool = pool
        self._providers = providers
        self._settings = settings

    # --- Supabase Auth --------------------------------------------------------------------------

    @activity.defn(name=names.CREATE_AUTH_USER)
    async def create_auth_user(self, new: NewAuthUser) -> AuthUserRef:
        """Create the auth user; a duplicate made by this same registration counts as success."""
        supabase = self._providers.supabase
        try:
            user = await supabase.create_user(
                email=new.email,
                phone=new.phone,
                password=unseal_password(self._settings, new.sealed_password),
                user_metadata={"name": new.name, "registration_key": new.registration_key},
            )
            return AuthUserRef(auth_user_id=uuid.UUID(str(user.id)))
        except ConflictError as exc:
            try:
                existing = await supabase.find_user_by_email(new.email)
            except ProviderError as lookup:
                _provider_failure(lookup, permanent_type=ErrorCode.AUTH_FAILED)
            if existing and existing.user_metadata.get("registration_key") == new.registration_key:
                return AuthUserRef(auth_user_id=uuid.UUID(str(existing.id)))
            duplicates = (ErrorCode.EMAIL_EXISTS, ErrorCode.PHONE_EXISTS)
            code = ErrorCode(exc.code) if exc.code in duplicates else ErrorCode.EMAIL_EXISTS
            raise ApplicationError(exc.message, type=code, non_retryable=True) from exc
        except ProviderError as exc:
            _provider_failure(exc, permanent_type=ErrorCode.AUTH_FAILED)

    @activity.defn(name=names.DELETE_AUTH_USER)
    async def delete_auth_user(self, target: AuthUserCleanup) -> None:
        """Delete the auth user (already gone counts as deleted); never someone else's."""
        supabase = self._providers.supabase
        try:
            user_id = target.auth_user_id
            if user_id is None and target.email:
                existing = await supabase.find_user_by_email(target.email)
                mine = existing is not None and (
                    existing.user_metadata.get("registration_key") == target.registration_key
                )
                user_id = uuid.UUID(str(existing.id)) if existing and mine else None
            if user_id is not None:
                await supabase.delete_user(str(user_id))
        except ProviderError as exc:
            _provider_failure(exc)

    # --- profiles ---------------------------------------------------------------------------------

    @activity.defn(name=names.CREATE_PROFILE)
    async def create_profile(self, new: NewProfile) -> ProfileRef:
        """Insert the profile; the unique indexes turn duplicates into email/phone/cpf_exists."""
        try:
            async with self._pool.connection() as conn:
                profile = await db_profiles.insert_profile(conn, **new.model_dump())
        except db_profiles.DuplicateProfile as exc:
            code = DUPLICATE_CODES.get(exc.field, ErrorCode.EMAIL_EXISTS)
            raise ApplicationError(f"duplicate {exc.field}", type=code, non_retryable=True) from exc
        return ProfileRef(profile_id=profile.profile_id, auth_user_id=profile.auth_user_id)

    @activity.defn(name=names.DELETE_PROFILE)
    async def delete_profile(self, target: AuthUserRef) -> None:
        """Delete the profile of this auth user, if there is one."""
        async with self._pool.connection() as conn:
            await db_profiles.delete_profile_of_auth_user(conn, target.auth_user_id)

    # --- Asaas customer ---------------------------------------------------------------------------

    @activity.defn(name=names.ENSURE_ASAAS_CUSTOMER)
    async def ensure_asaas_customer(self, spec: CustomerSpec) -> CustomerRef:
        """The Asaas customer whose externalReference is the profile id, created only if absent;
        duplicates that a lost create left behind are deleted, keeping `keeper` of them (the
        same race as the subscription's: see `create_subscription`)."""
        asaas = self._providers.asaas
        try:
            customer, created = await asaas.ensure_customer(
                name=spec.name,
                cpf_cnpj=spec.cpf_cnpj,
                email=spec.email,
                mobile_phone=_asaas_phone(spec.phone),
                external_reference=str(spec.profile_id),
            )
            found = await asaas.find_customers(str(spec.profile_id))
            if not any(c.id == customer.id for c in found):
                found.append(customer)  # Asaas's listing may lag behind its create
            kept = keeper(found)
            for duplicate in found:
                if duplicate.id != kept.id:
                    # No subscription uses it: the attempt saves the kept one before subscribing.
                    await asaas.delete_customer(duplicate.id)
        except ProviderError as exc:
            _provider_failure(exc)
        return CustomerRef(customer_id=kept.id, created=created and kept.id == customer.id)

    @activity.defn(name=names.DELETE_ASAAS_CUSTOMER)
    async def delete_asaas_customer(self, target: CustomerCleanup) -> None:
        """Delete the customer and any other customer carrying the profile's externalReference."""
        asaas = self._providers.asaas
        try:
            if target.customer_id:
                await asaas.delete_customer(target.customer_id)
            for _ in range(_MAX_DUPLICATE_CUSTOMERS):
                leftover = await asaas.find_customer(str(target.profile_id))
                if leftover is None:
                    return
                await asaas.delete_customer(leftover.id)
        except ProviderError as exc:
            _provider_failure(exc)
        raise ApplicationError(
            f"more than {_MAX_DUPLICATE_CUSTOMERS} Asaas customers for {target.profile_id}"
        )

    @activity.defn(name=names.SAVE_ASAAS_CUSTOMER)
    async def save_asaas_customer(self, saved: SavedCustomer) -> None:
        assert saved.customer_id is not None
        async with self._pool.connection() as conn:
            await db_profiles.set_asaas_customer(conn, saved.profile_id, saved.customer_id)

    @activity.defn(name=names.CLEAR_ASAAS_CUSTOMER)
    async def clear_asaas_customer(self, saved: SavedCustomer) -> None:
        async with self._pool.connection() as conn:
            await db_profiles.clear_asaas_customer(conn, saved.profile_id, saved.customer_id)

    # --- Asaas subscription -----------------------------------------------------------------------

    @activity.defn(name=names.CREATE_SUBSCRIPTION)
    async def create_subscription(self, spec: SubscriptionSpec) -> SubscriptionRef:
        """The attempt's one subscription: looked up by its externalReference, created only if
        absent, and any other one carrying the reference deleted before it is saved.

        Asaas has no idempotency key: a create whose answer was lost (a timeout while Asaas
        still works) may land before or after the retry's look-up. Whatever landed by now is
        settled here, keeping `keeper` of them; one landing later is deleted when its first
        charge reaches the payment workflow, and `entrega reconcile` reports it meanwhile."""
        asaas = self._providers.asaas
        try:
            found = await asaas.find_subscriptions(spec.external_reference)
            if not found:
                created = await asaas.create_subscription(
                    customer_id=spec.customer_id,
                    billing_type=spec.billing_type,
                    value=Decimal(spec.price_cents) / 100,
                    next_due_date=datetime.now(BRAZIL).date(),
                    cycle=spec.cycle,
                    description=spec.description,
                    external_reference=spec.external_reference,
                )
                found = await asaas.find_subscriptions(spec.external_reference)
                if not any(s.id == created.id for s in found):
                    found.append(created)  # Asaas's listing may lag behind its create
            kept = keeper(found)
            for duplicate in found:
                if duplicate.id != kept.id:
                    await asaas.delete_subscription(duplicate.id)
        except ProviderError as exc:
            _provider_failure(exc)
        return SubscriptionRef(subscription_id=kept.id)

    @activity.defn(name=names.DELETE_SUBSCRIPTION)
    async def delete_subscription(self, target: SubscriptionCleanup) -> None:
        """Delete the attempt's subscription by id, and every one carrying its externalReference
        (a lost create may have made more than one)."""
        asaas = self._providers.asaas
        try:
            if target.subscription_id is not None:
                await asaas.delete_subscription(target.subscription_id)
            for found in await asaas.find_subscriptions(target.external_reference):
                await asaas.delete_subscription(found.id)
        except ProviderError as exc:
            _provider_failure(exc)

    @activity.defn(name=names.CANCEL_PREVIOUS_SUBSCRIPTION)
    async def cancel_previous_subscription(self, previous: PreviousSubscription) -> None:
        """Delete the subscription the new one replaces; already gone (404) counts as done."""
        try:
            await self._providers.asaas.delete_subscription(previous.subscription_id)
        except ProviderError as exc:
            _provider_failure(exc)

    @activity.defn(name=names.SAVE_SUBSCRIPTION)
    async def save_subscription(self, saved: SavedSubscription) -> None:
        assert saved.subscription_id is not None
        async with self._pool.connection() as conn:
            await db_profiles.set_subscription(
                conn, saved.profile_id, saved.workflow_id, saved.subscription_id
            )

    @activity.defn(name=names.CLEAR_SUBSCRIPTION)
    async def clear_subscription(self, saved: SavedSubscription) -> None:
        async with self._pool.connection() as conn:
            await db_profiles.clear_subscription(
                conn, saved.profile_id, saved.workflow_id, saved.previous_subscription_id
            )

    @activity.defn(name=names.FINISH_CHECKOUT)
    async def finish_checkout(self, outcome: AttemptOutcome) -> None:
        async with self._pool.connection() as conn:
            await db_profiles.finish_checkout_attempt(conn, outcome.workflow_id, outcome.outcome)

    def all(self) -> list[Callable[..., Any]]:
        """Every activity of this class, for the worker."""
        return [
            self.create_auth_user,
            self.delete_auth_user,
            self.create_profile,
            self.delete_profile,
            self.ensure_asaas_customer,
            self.delete_asaas_customer,
            self.save_asaas_customer,
            self.clear_asaas_customer,
            self.create_subscription,
            self.delete_subscription,
            self.cancel_previous_subscription,
            self.save_subscription,
            self.clear_subscription,
            self.finish_checkout,
        ]
