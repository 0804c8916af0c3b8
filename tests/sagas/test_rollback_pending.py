"""A signup whose undoing keeps failing answers at once, with the truth: 503 rollback_pending while
the compensation goes on retrying (and parks on its own); a registration of the same e-mail
meanwhile gets the same answer, not 409; once the provider is back the undoing finishes and the
e-mail registers again."""

from __future__ import annotations

import time

import pytest
from temporalio.client import WorkflowFailureError

from tests.sagas.conftest import clear_db_fault, person, registration_id
from workflows.checkout import CheckoutWorkflow
from workflows.saga import STEP_RETRY

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox]

# The target: the answer comes while the first failed attempt is fresh, not after the retries.
ANSWER_WITHIN_SECONDS = 2.0
MESSAGE = (
    "Não foi possível concluir seu cadastro. Estamos desfazendo o que foi criado; "
    "tente novamente em alguns minutos."
)


def _rollback_pending(response) -> bool:
    return response.status_code == 503 and response.json()["error"] == {
        "code": "rollback_pending",
        "message": MESSAGE,
        "details": None,
    }


async def _rolled_back(stack, workflow_id: str) -> None:
    """Wait until the saga has finished undoing (it fails: the signup did not happen)."""
    with pytest.raises(WorkflowFailureError):
        await stack.temporal.get_workflow_handle(workflow_id).result()


async def test_first_checkout_whose_undoing_keeps_failing(stack) -> None:
    """Asaas refusing to delete the customer: the checkout answers 503 rollback_pending within
    2 s; registering the same e-mail and checking out again meanwhile answer the same; after
    Asaas recovers the account is gone and the e-mail registers and checks out again."""
    account = await stack.registered(0)
    await stack.sandbox.fault(
        "asaas", "create_subscription", status=400, times=STEP_RETRY.maximum_attempts
    )
    await stack.sandbox.fault("asaas", "delete_customer", status=503, times=10_000)
    started = time.monotonic()
    response = await stack.checkout(account["auth_user_id"])
    elapsed = time.monotonic() - started
    assert _rollback_pending(response), response.text
    assert elapsed <= ANSWER_WITHIN_SECONDS, elapsed

    # Meanwhile: the e-mail is neither free nor taken.
    assert _rollback_pending(again := await stack.register(0)), again.text
    assert _rollback_pending(again := await stack.checkout(account["auth_user_id"])), again.text
    workflow_id = f"checkout:{account['profile_id']}:1"
    status = await stack.temporal.get_workflow_handle(workflow_id).query(CheckoutWorkflow.status)
    assert "asaas_customer" in status.compensations_pending
    assert (await stack.sandbox.state())["asaas_customers"] != []

    await stack.sandbox.clear_faults()
    await _rolled_back(stack, workflow_id)
    state = await stack.sandbox.state()
    assert (state["auth_users"], state["asaas_customers"]) == ([], [])
    assert await stack.profiles() == []
    again_account = await stack.registered(0)
    assert (await stack.checkout(again_account["auth_user_id"])).status_code == 201
    assert await stack.orphans() == []


async def test_registration_whose_undoing_keeps_failing(stack, db_fault) -> None:
    """The profile step failing and Supabase refusing to delete the auth user: 503
    rollback_pending within 2 s, the same for a second registration of the e-mail (even with
    other data); once Supabase recovers, the e-mail registers."""
    await db_fault("profiles", "auth_user_id")
    await stack.sandbox.fault("supabase", "delete_user", status=503, times=10_000)
    started = time.monotonic()
    response = await stack.register(0)
    elapsed = time.monotonic() - started
    assert _rollback_pending(response), response.text
    assert elapsed <= ANSWER_WITHIN_SECONDS, elapsed

    other = person(0, name="Outra Pessoa", phone="+5511912345678", cpfCnpj="11144477735")
    again = await stack.api.post("/api/v1/profiles/register", json=other)
    assert _rollback_pending(again), again.text

    await stack.sandbox.clear_faults()
    await _rolled_back(stack, registration_id(0))
    assert (await stack.sandbox.state())["auth_users"] == []
    await clear_db_fault(stack.pool, "profiles", "auth_user_id")
    body = await stack.registered(0)
    assert [p["profile_id"] for p in await stack.profiles()] == [body["profile_id"]]
    assert await stack.orphans() == []
