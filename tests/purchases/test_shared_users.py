"""Lovable keeps one user per e-mail: a second purchase reuses it, and a refund deactivates it
only when no other live order grants it."""

from __future__ import annotations

import re

import pytest

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox]

EMAIL = "ana@example.com"
_PASSWORD = re.compile(r"Senha provisória: (\S+)")


async def buy(stack) -> str:
    """One completed Mercado Pago purchase by Ana; answers its order id."""
    payment_id = await stack.mp_payment(email=EMAIL)
    await stack.mp_notify(payment_id)
    order_id = f"purchase:mercadopago:{payment_id}"
    await stack.wait_stage(order_id, "completed")
    return order_id


async def credentials(stack, order_id: str) -> str:
    [email] = [
        e
        for e in await stack.emails(EMAIL)
        if e["tags"] == {"email_type": "credentials", "order_id": order_id.replace(":", "_")}
    ]
    return str(email["text"])


async def login(stack, password: str) -> int:
    response = await stack.sandbox.http.post(
        "/_sandbox/lovable/login", json={"email": EMAIL, "password": password}
    )
    return response.status_code


async def refund(stack, order_id: str) -> None:
    payment_id = order_id.rsplit(":", 1)[1]
    await stack.mp_set_status(payment_id, "refunded")
    await stack.mp_notify(payment_id)
    await stack.wait_stage(order_id, "revoked")


async def test_second_purchase_reuses_the_user_without_a_new_password(stack) -> None:
    """A customer whose Lovable user exists gets no generated password: the e-mail says to use
    the current one, which still opens the app, and there is one user."""
    first = await buy(stack)
    match = _PASSWORD.search(await credentials(stack, first))
    assert match
    second = await buy(stack)
    text = await credentials(stack, second)
    assert "Senha provisória" not in text and "a mesma que você já usa" in text
    order = await stack.order(second)
    assert order is not None and order.user_existed and order.encrypted_password is None
    assert len((await stack.sandbox.state())["lovable_users"]) == 1
    assert await login(stack, match.group(1)) == 200


async def test_refund_deactivates_only_when_no_other_order_grants_the_user(stack) -> None:
    """Two paid orders share Ana's user: refunding one keeps her access, refunding the other
    takes it away."""
    first, second = await buy(stack), await buy(stack)
    match = _PASSWORD.search(await credentials(stack, first))
    assert match
    await refund(stack, first)
    assert await login(stack, match.group(1)) == 200
    async with stack.pool.connection() as conn:
        kept = await (
            await conn.execute(
                "SELECT details FROM integration_logs WHERE workflow_id = %s AND event = %s",
                (first, "user_kept"),
            )
        ).fetchall()
    assert [row[0] for row in kept] == [{"live_orders": [second]}]
    await refund(stack, second)
    assert await login(stack, match.group(1)) == 403
