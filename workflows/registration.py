"""Registration saga (level 1): create the Supabase auth user, then the profile; any failure undoes
what was done. Workflow id `registration:<keyed hash of the normalized e-mail>`."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.saga import ROLLBACK_PENDING, SagaWorkflow, StepFailed

with workflow.unsafe.imports_passed_through():
    from activities.accounts import AccountActivities
    from contracts.errors import DUPLICATE_CODES, ErrorCode
    from contracts.signups import (
        AuthUserCleanup,
        NewAuthUser,
        NewProfile,
        RegistrationInput,
        RegistrationResult,
    )

# Duplicates pass through to the API as they are (docs/interfaces.md).
# What the `outcome` update tells a request whose e-mail a concurrent registration is handling:
# that one succeeded (the e-mail is taken), or failed (the request may try in its turn).
REGISTERED_CONCURRENTLY = ErrorCode.REGISTERED_CONCURRENTLY
CONCURRENT_REGISTRATION_FAILED = ErrorCode.CONCURRENT_REGISTRATION_FAILED
_DUPLICATES = frozenset(DUPLICATE_CODES.values())


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
            user = await saga.run_step(
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
            profile = await saga.run_step(
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


def _answer_for(step: str | None, cause: str | None) -> ErrorCode:
    """Which documented error a failed registration answers with."""
    if cause in _DUPLICATES:
        return ErrorCode(cause)
    if step == "auth_user":
        return ErrorCode.AUTH_FAILED
    return ErrorCode.REGISTRATION_FAILED
