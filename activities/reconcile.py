"""The orphan check behind `entrega reconcile`: auth users, profiles and Asaas customers must
point at each other, and each checkout attempt has at most one Asaas subscription. Anything a
saga left half-done (or a person changed by hand, or a create Asaas finished after we gave up
on it) shows up here."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel

from activities.accounts import keeper
from db import profiles as db_profiles
from providers.asaas import AsaasSubscription
from providers.clients import ProviderClients


class Orphan(BaseModel):
    kind: str
    id: str
    detail: str


async def find_orphans(pool: AsyncConnectionPool, providers: ProviderClients) -> list[Orphan]:
    """Every orphan, in either direction, between Supabase Auth, profiles and Asaas customers."""
    users = {user.id: user for user in await providers.supabase.list_users()}
    customers = {customer.id: customer for customer in await providers.asaas.list_customers()}
    subscriptions = await providers.asaas.list_subscriptions()
    async with pool.connection() as conn:
        profiles = await db_profiles.list_profiles(conn)
        saved = await db_profiles.saved_attempt_subscriptions(conn)
    by_auth_user = {str(p.auth_user_id): p for p in profiles}
    by_profile_id = {str(p.profile_id): p for p in profiles}

    orphans: list[Orphan] = []
    for user_id, user in users.items():
        if user_id not in by_auth_user:
            orphans.append(
                Orphan(kind="auth_user_without_profile", id=user_id, detail=user.email or "")
            )
    for profile in profiles:
        if str(profile.auth_user_id) not in users:
            orphans.append(
                Orphan(
                    kind="profile_without_auth_user",
                    id=str(profile.profile_id),
                    detail=f"auth user {profile.auth_user_id} ({profile.email})",
                )
            )
        if profile.asaas_customer_id and profile.asaas_customer_id not in customers:
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
