"""Checkout end to end: level 2 (first attempt: everything undone, the account too) and level 3
(later attempt: only what the attempt created), with a fault injected at each step."""

from __future__ import annotations

import asyncio

import pytest

from workflows.saga import STEP_RETRY

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox]

ROLLED_BACK = "Erro no processo de registro. Por favor, tente criar sua conta novamente."


async def _sandbox_fault(stack, operation: str, status: int) -> None:
    # As many failures as the step has attempts (STEP_RETRY), so the compensations that use the
    # same operation (deleting looks customers up) find Asaas healthy again.
    await stack.sandbox.fault("asaas", operation, status=status, times=STEP_RETRY.maximum_attempts)


# (step, how to break it): each step of the checkout saga, by Asaas or by the database.
STEP_FAULTS = [
    ("asaas_customer", lambda s, db: _sandbox_fault(s, "create_customer", 500)),
    ("asaas_customer", lambda s, db: _sandbox_fault(s, "list_customers", 503)),
    ("save_customer", lambda s, db: db("profiles", "asaas_customer_id")),
    ("subscription", lambda s, db: _sandbox_fault(s, "create_subscription", 400)),
    ("save_subscription", lambda s, db: db("profiles", "subscription_id")),
]


async def test_first_checkout_creates_customer_and_subscription(stack) -> None:
    """201 with the ids Asaas holds; both saved on the profile; no orphans."""
    account = await stack.registered(0)
    response = await stack.checkout(account["auth_user_id"])
    assert response.status_code == 201, response.text
    body = response.json()
    state = await stack.sandbox.state()
    assert [c["id"] for c in state["asaas_customers"]] == [body["asaas_customer_id"]]
    assert state["asaas_customers"][0]["externalReference"] == account["profile_id"]
    [subscription] = state["asaas_subscriptions"]
    assert subscription["id"] == body["subscription_id"]
    assert (subscription["value"], subscription["cycle"]) == (49.9, "MONTHLY")
    [profile] = await stack.profiles()
    assert (profile["asaas_customer_id"], profile["subscription_id"]) == (
        body["asaas_customer_id"],
        body["subscription_id"],
    )
    assert await stack.orphans() == []


@pytest.mark.parametrize(("step", "inject"), STEP_FAULTS, ids=[f[0] for f in STEP_FAULTS])
async def test_first_checkout_failing_removes_the_account(stack, db_fault, step, inject) -> None:
    """Level 2: a failure at any step undoes the subscription, the customer, the profile and the
    auth user, and answers 502 registration_rolled_back."""
    account = await stack.registered(0)
    await inject(stack, db_fault)
    response = await stack.checkout(account["auth_user_id"])
    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert error["code"] == "registration_rolled_back", error
    # The documented line, then what went wrong on a `Detalhes:` line, as the old system said it.
    assert error["details"], error
    assert error["message"] == f"{ROLLED_BACK}\nDetalhes: {error['details']}", error
    await stack.sandbox.clear_faults()
    state = await stack.sandbox.state()
    assert state["auth_users"] == []
    assert state["asaas_customers"] == []
    assert state["asaas_subscriptions"] == []
    assert await stack.profiles() == []
    assert await stack.orphans() == []
    workflow_id = f"checkout:{account['profile_id']}:1"
    journal = await stack.journal(workflow_id)
    assert ("step_failed", step) in journal
    assert journal[-2:] == [("compensated", "profile"), ("compensated", "auth_user")]


async def test_account_can_be_created_again_after_level_2(stack) -> None:
    """After a first checkout removed the account, the same person registers and pays again."""
    account = await stack.registered(0)
    await _sandbox_fault(stack, "create_subscription", 400)
    assert (await stack.checkout(account["auth_user_id"])).status_code == 502
    await stack.sandbox.clear_faults()
    again = await stack.registered(0)
    assert (await stack.checkout(again["auth_user_id"])).status_code == 201
    assert await stack.orphans() == []


async def test_later_checkout_failing_keeps_the_account(stack) -> None:
    """Level 3: a later attempt failing at its subscription undoes only that subscription; the
    user, profile, customer and first subscription stay; 502 checkout_failed with details."""
    account = await stack.registered(0)
    first = (await stack.checkout(account["auth_user_id"])).json()
    await _sandbox_fault(stack, "create_subscription", 400)
    response = await stack.checkout(account["auth_user_id"], billing_type="BOLETO")
    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert error["code"] == "checkout_failed"
    assert error["message"].startswith("Erro ao criar checkout: ")
    assert len(error["message"]) > len("Erro ao criar checkout: ")
    await stack.sandbox.clear_faults()
    state = await stack.sandbox.state()
    assert [u["id"] for u in state["auth_users"]] == [account["auth_user_id"]]
    assert [c["id"] for c in state["asaas_customers"]] == [first["asaas_customer_id"]]
    assert [s["id"] for s in state["asaas_subscriptions"]] == [first["subscription_id"]]
    [profile] = await stack.profiles()
    assert (profile["asaas_customer_id"], profile["subscription_id"]) == (
        first["asaas_customer_id"],
        first["subscription_id"],
    )
    assert await stack.orphans() == []


async def test_later_checkout_failing_at_save_restores_the_previous_subscription(
    stack, db_fault
) -> None:
    """Level 3 at the last step: the new subscription is deleted and the profile keeps the old."""
    account = await stack.registered(0)
    first = (await stack.checkout(account["auth_user_id"])).json()
    await db_fault("profiles", "subscription_id")
    response = await stack.checkout(account["auth_user_id"])
    assert response.status_code == 502
    state = await stack.sandbox.state()
    assert [s["id"] for s in state["asaas_subscriptions"]] == [first["subscription_id"]]
    [profile] = await stack.profiles()
    assert profile["subscription_id"] == first["subscription_id"]
    assert await stack.orphans() == []


@pytest.mark.parametrize(("step", "inject"), STEP_FAULTS, ids=[f[0] for f in STEP_FAULTS])
async def test_later_checkout_undoes_the_customer_it_created(
    stack, pool, db_fault, step, inject
) -> None:
    """Level 3 where the attempt had to create the customer (the profile had a subscription but
    no customer): a failure at any step deletes that customer and forgets its id."""
    account = await stack.registered(0)
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE profiles SET subscription_id = 'sub_old' WHERE profile_id = %s",
            (account["profile_id"],),
        )
    await inject(stack, db_fault)
    response = await stack.checkout(account["auth_user_id"])
    assert response.status_code == 502, response.text
    assert response.json()["error"]["code"] == "checkout_failed"
    await stack.sandbox.clear_faults()
    state = await stack.sandbox.state()
    assert [u["id"] for u in state["auth_users"]] == [account["auth_user_id"]]
    assert state["asaas_customers"] == []
    assert state["asaas_subscriptions"] == []
    [profile] = await stack.profiles()
    assert (profile["asaas_customer_id"], profile["subscription_id"]) == (None, "sub_old")
    assert await stack.orphans() == []


async def test_checkout_needs_a_known_plan_and_a_token(stack) -> None:
    """An unknown plan is a 422 on plan_id; no token is a 401; neither starts a saga."""
    account = await stack.registered(0)
    response = await stack.checkout(account["auth_user_id"], plan_id="gold")
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "plan_id"
    anonymous = await stack.api.post(
        "/api/v1/checkout/create", json={"plan_id": "basic", "billing_type": "PIX"}
    )
    assert anonymous.status_code == 401
    assert (await stack.sandbox.state())["asaas_customers"] == []


async def test_an_attempt_whose_workflow_never_started_is_adopted(stack, pool) -> None:
    """An unfinished attempt whose workflow never started (its API process died after numbering
    it) does not block the account and is not closed on a clock's guess: the next request starts
    that same attempt, so it is the one saga that runs."""
    account = await stack.registered(0)
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO checkout_attempts (profile_id, attempt, workflow_id, plan_id)"
            " VALUES (%(p)s::uuid, 1, 'checkout:' || %(p)s::text || ':1', 'basic')",
            {"p": account["profile_id"]},
        )
    response = await stack.checkout(account["auth_user_id"])
    assert response.status_code == 201, response.text
    async with pool.connection() as conn:
        rows = await (
            await conn.execute("SELECT attempt, outcome FROM checkout_attempts ORDER BY attempt")
        ).fetchall()
    assert rows == [(1, "completed")]
    assert len((await stack.sandbox.state())["asaas_subscriptions"]) == 1


async def test_a_second_request_while_the_saga_runs_is_409(stack, pool) -> None:
    """While an attempt's workflow runs, another checkout of the account is refused with 409."""
    account = await stack.registered(0)
    await stack.sandbox.fault("asaas", "create_customer", latency_ms=1500, times=1)
    first = asyncio.create_task(stack.checkout(account["auth_user_id"]))
    for _ in range(100):
        if (await stack.sandbox.http.get("/_sandbox/faults")).json()[0]["fired"]:
            break
        await asyncio.sleep(0.02)
    refused = await stack.checkout(account["auth_user_id"])
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "checkout_in_progress"
    assert (await first).status_code == 201


async def test_a_slow_first_request_is_never_taken_over(stack, pool, monkeypatch) -> None:
    """A first checkout request that stalls between numbering its attempt and starting its
    workflow (longer than any clock threshold) and a second request: exactly one first-checkout
    saga runs, and both requests answer with its subscription."""
    account = await stack.registered(0)
    # The old takeover waited 60 s; any threshold shows the race, so make it instant.
    monkeypatch.setattr("api.routes.accounts._STALE_ATTEMPT_SECONDS", 0.0, raising=False)
    release = asyncio.Event()
    stalled = asyncio.Event()
    start_workflow = stack.temporal.execute_update_with_start_workflow
    calls = 0

    async def stalling_start(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 1:  # the first request stalls here, its attempt numbered
            stalled.set()
            await release.wait()
        return await start_workflow(*args, **kwargs)

    monkeypatch.setattr(stack.temporal, "execute_update_with_start_workflow", stalling_start)
    slow = asyncio.create_task(stack.checkout(account["auth_user_id"]))
    await asyncio.wait_for(stalled.wait(), 10)
    await asyncio.sleep(0.05)
    second = await stack.checkout(account["auth_user_id"])
    release.set()
    first = await slow
    assert (first.status_code, second.status_code) == (201, 201), (first.text, second.text)
    assert first.json() == second.json()
    subscriptions = (await stack.sandbox.state())["asaas_subscriptions"]
    assert [s["id"] for s in subscriptions] == [first.json()["subscription_id"]]
    async with pool.connection() as conn:
        rows = await (
            await conn.execute("SELECT attempt, outcome FROM checkout_attempts ORDER BY attempt")
        ).fetchall()
    assert rows == [(1, "completed")]
