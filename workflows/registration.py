"""Registration saga (level 1): create the Supabase auth user, then the profile; any failure undoes
what was done. Workflow id `registration:<keyed hash of the normalized e-mail>`."""

from __future__ import annotations

import hashlib
import hmac

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.saga import ROLLBACK_PENDING, SagaWorkflow, StepFailed

with workflow.unsafe.imports_passed_through():
    from activities.accounts import (
        AUTH_FAILED,
        DUPLICATE_CODES,
        AccountActivities,
        AuthUserCleanup,
        AuthUserRef,
        NewAuthUser,
        NewProfile,
        ProfileRef,
    )
    from workflows.signup_types import RegistrationInput, RegistrationResult

# Failure types the API maps to answers (docs/interfaces.md): duplicates pass through as they are.
REGISTRATION_FAILED = "registration_failed"
# What the `outcome` update tells a request whose e-mail a concurrent registration is handling:
# that one succeeded (the e-mail is taken), or failed (the request may try in its turn).
REGISTERED_CONCURRENTLY = "registered_concurrently"
CONCURRENT_REGISTRATION_FAILED = "concurrent_registration_failed"
_DUPLICATES = frozenset(DUPLICATE_CODES.values())


def workflow_id(email: str, key: str) -> str:
    """`registration:<HMAC-SHA256 of the normalized e-mail>`: two registrations of one e-mail meet
    in one id, and the id (visible to whoever reads Temporal) holds no e-mail. `key` is
    REGISTRATION_ID_KEY, which must never change: a new key would split old and new ids."""
    digest = hmac.new(key.encode(), email.encode(), hashlib.sha256).hexdigest()
    return f"registration:{digest}"


def legacy_workflow_id(email: str) -> str:
    """The id registrations had before (`registration:<e-mail>`); such runs may still exist."""
    return f"registration:{email}"


@workflow.defn
class RegistrationWorkflow(SagaWorkflow):
    def __init__(self) -> None:
        super().__init__()
        self._request_id: str | None = None

    @workflow.update
    async def outcome(self, request_id: str) -> RegistrationResult:
        """The answer for the request `request_id`, as soon as it is known (update-with-start).

        The request that started this run gets the run's own answer. Any other request (the same
        e-mail, concurrently) learns whether the e-mail was taken or is free for its turn; while
        a compensation is being retried, every request gets `rollback_pending`."""
        try:
            result: RegistrationResult = await self._saga.outcome()
        except ApplicationError as failure:
            if failure.type == ROLLBACK_PENDING or request_id == self._request_id:
                raise
            raise ApplicationError(
                "a concurrent registration of this e-mail failed",
                type=CONCURRENT_REGISTRATION_FAILED,
                non_retryable=True,
            ) from None
        if request_id != self._request_id:
            raise ApplicationError(
                "a concurrent registration of this e-mail succeeded",
                type=REGISTERED_CONCURRENTLY,
                non_retryable=True,
            )
        return result

    @workflow.run
    async def run(self, new: RegistrationInput) -> RegistrationResult:
        self._request_id = new.request_id
        self._saga.begin()
        info = workflow.info()
        registration_key = f"{info.workflow_id}:{info.run_id}"
        saga = self._saga
        try:
            saga.add_compensation(
                "auth_user",
                AccountActivities.delete_auth_user,
                AuthUserCleanup(email=new.email, registration_key=registration_key),
            )
            user: AuthUserRef = await saga.run_step(
                "auth_user",
                AccountActivities.create_auth_user,
                NewAuthUser(
                    email=new.email,
                    phone=new.phone,
                    name=new.name,
                    sealed_password=new.sealed_password,
                    registration_key=registration_key,
                ),
            )
            saga.add_compensation("profile", AccountActivities.delete_profile, user)
            profile: ProfileRef = await saga.run_step(
                "profile",
                AccountActivities.create_profile,
                NewProfile(
                    auth_user_id=user.auth_user_id,
                    name=new.name,
                    email=new.email,
                    phone=new.phone,
                    cpf_cnpj=new.cpf_cnpj,
                ),
            )
        except StepFailed as failed:
            await saga.compensate()
            failure = ApplicationError(
                failed.message, type=_answer_for(failed.step, failed.type), non_retryable=True
            )
            saga.decide(failure)
            await saga.flush()
            await workflow.wait_condition(workflow.all_handlers_finished)
            raise failure from failed
        saga.complete()
        result = RegistrationResult(profile_id=profile.profile_id, auth_user_id=user.auth_user_id)
        saga.decide(result)
        await saga.flush()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result


def _answer_for(step: str | None, cause: str | None) -> str:
    """Which documented error a failed registration answers with."""
    if cause in _DUPLICATES:
        return cause
    if step == "auth_user":
        return AUTH_FAILED
    return REGISTRATION_FAILED
