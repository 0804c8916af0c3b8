"""The orphan check behind `entrega reconcile`: auth users, profiles and Asaas customers must
point at each other, and each checkout attempt has at most one Asaas subscription. Anything a
saga left half-done (or a person changed by hand, or a create Asaas finished after we gave up
on it) shows up here."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta

from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel
from temporalio.client import Client

from activities.accounts import BRAZIL, keeper
from db import profiles as db_profiles
from providers.asaas import AsaasSubscription
from providers.clients import ProviderClients


class Orphan(BaseModel):
    kind: str
    id: str
    detail: str


# Sagas whose records are work in progress, not orphans: still running, or parked for a person.
_SAGA_TYPES = ("RegistrationWorkflow", "CheckoutWorkflow")


async def running_sagas(client: Client) -> set[str]:
    """Workflow ids of registration and checkout sagas still running (parked ones included:
    a parked saga is a running workflow waiting for `retry`)."""
    types = ", ".join(f"'{name}'" for name in _SAGA_TYPES)
    query = f"WorkflowType IN ({types}) AND ExecutionStatus = 'Running'"
    return {execution.id async for execution in client.list_workflows(query)}


def _created(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def find_orphans(
    pool: AsyncConnectionPool,
    providers: ProviderClients,
    *,
    grace: timedelta = timedelta(0),
    busy: Collection[str] = (),
) -> list[Orphan]:
    """Every orphan, in either direction, between Supabase Auth, profiles and Asaas customers.

    Not reported: records younger than `grace`, and those of a saga in `busy` (workflow ids of
    sagas still running or parked): their saga may still finish or undo them.
    """
    now = datetime.now(UTC)
    young_since = now - grace
    # Asaas dates customers by Brasília calendar day only: a customer from the grace period's
    # first day is young.
    young_day = young_since.astimezone(BRAZIL).date()
    busy_registrations = set(busy)
    busy_profiles = {wf.split(":")[1] for wf in busy if wf.startswith("checkout:")}
    busy_attempts = {wf for wf in busy if wf.startswith("checkout:")}

    users = {user.id: user for user in await providers.supabase.list_users()}
    customers = {customer.id: customer for customer in await providers.asaas.list_customers()}
    subscriptions = await providers.asaas.list_subscriptions()
    async with pool.connection() as conn:
        profiles = await db_profiles.list_profiles(conn)
        saved = await db_profiles.saved_attempt_subscriptions(conn)

    def registration_busy(user_id: str) -> bool:
        user = users.get(user_id)
        key = str(user.user_metadata.get("registration_key") or "") if user else ""
        # The key is `<registration workflow id>:<run id>`.
        return bool(key) and key.rsplit(":", 1)[0] in busy_registrations

    young_users = {
        uid
        for uid, user in users.items()
        if ((created := _created(user.created_at)) is not None and created > young_since)
        or registration_busy(uid)
    }
    skipped_profiles = {
        str(p.profile_id)
        for p in profiles
        if p.created_at > young_since
        or str(p.profile_id) in busy_profiles
        or str(p.auth_user_id) in young_users
    }
    all_users, all_customers = users, customers
    users = {uid: u for uid, u in users.items() if uid not in young_users}
    customers = {
        cid: c
        for cid, c in customers.items()
        if not (grace and c.date_created is not None and c.date_created >= young_day)
        and (c.external_reference or "") not in skipped_profiles
    }
    subscriptions = [s for s in subscriptions if s.external_reference not in busy_attempts]
    # Young or busy profiles are left out below, but still vouch for their auth users and
    # customers above.
    all_profiles = profiles
    profiles = [p for p in profiles if str(p.profile_id) not in skipped_profiles]
    by_auth_user = {str(p.auth_user_id): p for p in all_profiles}
    by_profile_id = {str(p.profile_id): p for p in all_profiles}

    orphans: list[Orphan] = []
    for user_id, user in users.items():
        if user_id not in by_auth_user:
            orphans.append(
                Orphan(kind="auth_user_without_profile", id=user_id, detail=user.email or "")
            )
    for profile in profiles:
        if str(profile.auth_user_id) not in all_users:
            orphans.append(
                Orphan(
                    kind="profile_without_auth_user",
                    id=str(profile.profile_id),
                    detail=f"auth user {profile.auth_user_id} ({profile.email})",
                )
            )
        if profile.asaas_customer_id and profile.asaas_customer_id not in all_customers:
            orphans.append(
                Orphan(
                    kind="profile_customer_missing",
                    id=str(profile.profile_id),
                    detail=f"Asaas customer {profile.asaas_customer_id} does not exist",
                )
            )
    for customer_id, customer in customers.items():
        owner = by_profile_id.get(customer.external_reference or "")
        if owner is None:
            orphans.append(
                Orphan(
                    kind="asaas_customer_without_profile",
                    id=customer_id,
                    detail=f"externalReference {customer.external_reference!r}",
                )
            )
        elif owner.asaas_customer_id != customer_id:
            orphans.append(
                Orphan(
                    kind="asaas_customer_not_saved",
                    id=customer_id,
                    detail=f"profile {owner.profile_id} holds {owner.asaas_customer_id!r}",
                )
            )
    orphans.extend(duplicate_subscriptions(subscriptions, saved))
    return orphans


def duplicate_subscriptions(
    subscriptions: list[AsaasSubscription], saved: dict[str, str]
) -> list[Orphan]:
    """Every live subscription beyond the one its externalReference (checkout attempt) keeps:
    the one the attempt saved, or else the oldest (`keeper`). Each one bills the customer again."""
    by_reference: dict[str, list[AsaasSubscription]] = {}
    for subscription in subscriptions:
        if subscription.external_reference and not subscription.deleted:
            by_reference.setdefault(subscription.external_reference, []).append(subscription)
    found: list[Orphan] = []
    for reference, group in by_reference.items():
        if len(group) < 2:
            continue
        kept_id = saved.get(reference)
        if kept_id not in {s.id for s in group}:
            kept_id = keeper(group).id
        found.extend(
            Orphan(
                kind="duplicate_subscription",
                id=s.id,
                detail=f"externalReference {reference!r} keeps {kept_id}",
            )
            for s in group
            if s.id != kept_id
        )
    return found
