"""Registration end to end (level 1): the sandbox's Supabase, the database and Temporal, with
faults injected at each step. Every test asserts what is left in the sandbox and the database."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import WorkflowFailureError

from tests.sagas.conftest import person, registration_id

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox]


async def _assert_nothing_left(stack) -> None:
    state = await stack.sandbox.state()
    assert state["auth_users"] == []
    assert await stack.profiles() == []
    assert await stack.orphans() == []


async def test_registration_creates_user_and_profile(stack) -> None:
    """201 with ids that match one auth user and one profile; no orphans; journal complete."""
    body = await stack.registered(0)
    state = await stack.sandbox.state()
    assert [u["id"] for u in state["auth_users"]] == [body["auth_user_id"]]
    profiles = await stack.profiles()
    assert [(p["profile_id"], p["auth_user_id"]) for p in profiles] == [
        (body["profile_id"], body["auth_user_id"])
    ]
    assert profiles[0]["email"] == "pessoa0@example.com"
    assert await stack.orphans() == []
    assert await stack.journal(registration_id(0)) == [
        ("step_completed", "auth_user"),
        ("step_completed", "profile"),
    ]


@pytest.mark.parametrize("status", [500, 403])
async def test_auth_user_step_failing_leaves_nothing(stack, status) -> None:
    """Supabase failing (transient after retries, or permanent) answers 502 auth_failed."""
    await stack.sandbox.fault("supabase", "create_user", status=status, times=100)
    response = await stack.register(0)
    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert (error["code"], error["message"]) == ("auth_failed", "Erro ao criar conta de acesso")
    await stack.sandbox.clear_faults()
    await _assert_nothing_left(stack)


async def test_profile_step_failing_deletes_the_auth_user(stack, db_fault) -> None:
    """The database refusing the profile answers 503 registration_failed; the auth user is gone."""
    await db_fault("profiles", "auth_user_id")
    response = await stack.register(0)
    assert response.status_code == 503, response.text
    assert response.json()["error"] == {
        "code": "registration_failed",
        "message": "Erro ao criar conta. Tente novamente em alguns instantes.",
        "details": response.json()["error"]["details"],
    }
    await _assert_nothing_left(stack)
    assert await stack.journal(registration_id(0)) == [
        ("step_completed", "auth_user"),
        ("step_failed", "profile"),
        ("compensated", "profile"),
        ("compensated", "auth_user"),
    ]


async def test_compensation_is_retried_with_backoff(stack, db_fault) -> None:
    """Supabase refusing the first two deletions does not leave the auth user behind. The answer
    does not wait for the retries: 503 rollback_pending as soon as the first deletion failed."""
    await db_fault("profiles", "auth_user_id")
    await stack.sandbox.fault("supabase", "delete_user", status=503, times=2)
    response = await stack.register(0)
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "rollback_pending"
    with pytest.raises(WorkflowFailureError):
        await stack.temporal.get_workflow_handle(registration_id(0)).result()
    await _assert_nothing_left(stack)


async def test_same_data_registers_right_after_a_failure(stack) -> None:
    """After a failed run, the same person registers again under the same workflow id."""
    await stack.sandbox.fault("supabase", "create_user", status=500, times=100)
    assert (await stack.register(0)).status_code == 502
    await stack.sandbox.clear_faults()
    body = await stack.registered(0)
    assert [p["profile_id"] for p in await stack.profiles()] == [body["profile_id"]]
    assert await stack.orphans() == []


# Person 0's e-mail, phone and CPF, written differently: normalization must still match them.
SAME_AS_PERSON_0 = {
    "email": "PESSOA0@example.com",
    "phone": "(11) 98765-4300",
    "cpfCnpj": "529.982.247-25",
}


@pytest.mark.parametrize(
    ("field", "code", "message"),
    [
        ("email", "email_exists", "Este e-mail já está cadastrado"),
        ("phone", "phone_exists", "Este telefone já está cadastrado"),
        ("cpfCnpj", "cpf_exists", "Este CPF já está cadastrado"),
    ],
)
async def test_duplicate_answers_409_with_its_message(stack, field, code, message) -> None:
    """A second person sharing one field gets 409 with the exact message; one account stays."""
    first = await stack.registered(0)
    response = await stack.register(1, **{field: SAME_AS_PERSON_0[field]})
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert (error["code"], error["message"], error["details"]) == (code, message, {"field": field})
    assert [u["id"] for u in (await stack.sandbox.state())["auth_users"]] == [first["auth_user_id"]]
    assert await stack.orphans() == []


async def test_phone_taken_at_supabase_only_is_phone_exists(stack) -> None:
    """A phone that only Supabase Auth knows (an auth user with no profile here, so the profile
    check cannot catch it) reaches Supabase's 422 phone_exists: 409 phone_exists, not
    email_exists, and the registration leaves nothing behind."""
    other = await stack.providers.supabase.create_user(
        email="outra@example.com", phone=person(0)["phone"], password="segredo123"
    )
    response = await stack.register(0)
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert (error["code"], error["message"], error["details"]) == (
        "phone_exists",
        "Este telefone já está cadastrado",
        {"field": "phone"},
    )
    assert [u["id"] for u in (await stack.sandbox.state())["auth_users"]] == [str(other.id)]
    assert await stack.profiles() == []


async def test_concurrent_registrations_of_one_email(stack) -> None:
    """Two concurrent registrations of one e-mail: one 201, one 409 email_exists, one account."""
    responses = await asyncio.gather(
        stack.register(0), stack.register(1, email="pessoa0@example.com")
    )
    assert sorted(r.status_code for r in responses) == [201, 409]
    conflict = next(r for r in responses if r.status_code == 409)
    assert conflict.json()["error"]["code"] == "email_exists"
    assert len((await stack.sandbox.state())["auth_users"]) == 1
    assert len(await stack.profiles()) == 1
    assert await stack.orphans() == []


async def test_concurrent_registrations_of_one_cpf(stack) -> None:
    """Two people with one CPF at once: both pass the early check (Supabase is slow), the unique
    index decides, and the loser's auth user is undone."""
    await stack.sandbox.fault("supabase", "create_user", latency_ms=300, times=2)
    responses = await asyncio.gather(stack.register(0), stack.register(1, cpfCnpj="52998224725"))
    assert sorted(r.status_code for r in responses) == [201, 409]
    conflict = next(r for r in responses if r.status_code == 409)
    assert conflict.json()["error"]["code"] == "cpf_exists"
    assert conflict.json()["error"]["details"] == {"field": "cpfCnpj"}
    loser = 1 if responses[0].status_code == 201 else 0
    assert ("step_failed", "profile") in await stack.journal(registration_id(loser))
    assert len((await stack.sandbox.state())["auth_users"]) == 1
    assert len(await stack.profiles()) == 1
    assert await stack.orphans() == []


async def test_lost_answer_from_supabase_is_not_a_duplicate(stack) -> None:
    """Supabase creates the user but answers after our client gave up (2 s): the retry meets
    email_exists, recognizes its own user by the registration key, and the registration succeeds
    with that one user."""
    await stack.sandbox.fault("supabase", "create_user", latency_ms=2300, times=1)
    registering = asyncio.create_task(stack.register(0))
    while (await stack.sandbox.http.get("/_sandbox/faults")).json()[0]["fired"] < 1:
        await asyncio.sleep(0.01)
    # The retry (0.2 s after the 2 s timeout) is held until the first call has created the user.
    await stack.sandbox.fault("supabase", "create_user", latency_ms=600, times=1)
    response = await registering
    assert response.status_code == 201, response.text
    state = await stack.sandbox.state()
    assert [u["id"] for u in state["auth_users"]] == [response.json()["auth_user_id"]]
    assert await stack.orphans() == []
