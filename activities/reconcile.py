"""The orphan check behind `entrega reconcile`: auth users, profiles and Asaas customers must
point at each other. Anything a saga left half-done (or a person changed by hand) shows up here."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel

from db import profiles as db_profiles
from providers.clients import ProviderClients


class Orphan(BaseModel):
    kind: str
    id: str
    detail: str


async def find_orphans(pool: AsyncConnectionPool, providers: ProviderClients) -> list[Orphan]:
    """Every orphan, in either direction, between Supabase Auth, profiles and Asaas customers."""
    users = {user.id: user for user in await providers.supabase.list_users()}
    customers = {customer.id: customer for customer in await providers.asaas.list_customers()}
    async with pool.connection() as conn:
        profiles = await db_profiles.list_profiles(conn)
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
    return orphans
