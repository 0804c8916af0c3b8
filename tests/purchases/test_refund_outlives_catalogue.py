"""A refund and a finished order stay what they are when a later run finds the payment does not
match the catalogue: the catalogue parks only orders that could still be provisioned."""

from __future__ import annotations

from decimal import Decimal

import pytest

from activities.catalogue import CatalogueActivities
from contracts.purchases import CATALOGUE_MISMATCH, MatchProduct, Payment, StageChange
from db import orders

pytestmark = pytest.mark.db

ORDER = "purchase:appmax:77"


def change(stage: str, state: str = "approved", error: str | None = None) -> StageChange:
    payment = Payment(
        state=state,  # type: ignore[arg-type]
        provider_status=state,
        email="ana@example.com",
        amount=Decimal("9.90"),
    )
    return StageChange(
        order_id=ORDER,
        provider="appmax",
        provider_order_id="77",
        stage=stage,  # type: ignore[arg-type]
        last_error=error,
        payment=payment,
    )


async def test_a_refunded_order_is_not_judged_by_the_catalogue(pool) -> None:
    """A re-sent "paid" for an order refunded before access is let through to the run's refund
    check (which ends the run) instead of being parked as a catalogue mismatch."""
    async with pool.connection() as conn:
        await orders.apply_stage(conn, change("cancelled", "refunded"))
    cheap = Payment(
        state="approved",
        provider_status="approved",
        email="ana@example.com",
        amount=Decimal("9.90"),
    )
    match = await CatalogueActivities(pool).match_product(
        MatchProduct(order_id=ORDER, payment=cheap)
    )
    assert match.mismatch is None


async def test_an_approved_payment_never_parks_a_refunded_order(pool) -> None:
    """`failed_permanent` for an approved payment (a catalogue mismatch, an unreadable payment)
    does not overwrite `cancelled` on a refunded order."""
    async with pool.connection() as conn:
        await orders.apply_stage(conn, change("cancelled", "refunded"))
        state = await orders.apply_stage(conn, change("failed_permanent", error="não confere"))
        order = await orders.get_order(conn, ORDER)
    assert (state.stage, state.refunded) == ("cancelled", True)
    assert order is not None and order.stage == "cancelled"


async def test_only_a_refused_revocation_moves_a_completed_order(pool) -> None:
    """A completed order gives way to `failed_permanent` only when the change carries the refund
    whose revocation Lovable refused; a late approved run's mismatch leaves it completed."""
    async with pool.connection() as conn:
        await orders.apply_stage(conn, change("completed"))
        state = await orders.apply_stage(conn, change("failed_permanent", error="não confere"))
        assert state.stage == "completed"
        state = await orders.apply_stage(conn, change("failed_permanent", "refunded", "401"))
        assert state.stage == "failed_permanent"


async def test_an_order_parked_by_the_catalogue_does_not_keep_a_shared_user(pool) -> None:
    """Refunding the one order that paid for the product deactivates the shared user, even when
    the same customer has another payment parked because it bought nothing we sell (R$ 9,90)."""
    paid = "purchase:mercadopago:1"
    async with pool.connection() as conn:
        await orders.apply_stage(
            conn,
            StageChange(
                order_id=paid,
                provider="mercadopago",
                provider_order_id="1",
                stage="completed",
                payment=Payment(
                    state="approved",
                    provider_status="approved",
                    email="ana@example.com",
                    amount=Decimal("49.90"),
                ),
            ),
        )
        await orders.store_user(conn, paid, "u1", existed=False)
        mismatch = f"{CATALOGUE_MISMATCH}: valor pago R$ 9,90 diferente do preço"
        await orders.apply_stage(conn, change("failed_permanent", error=mismatch))
        async with conn.transaction():
            decision = await orders.record_refund(conn, paid)
    assert decision is not None and decision.kept_for == [] and decision.deactivate
