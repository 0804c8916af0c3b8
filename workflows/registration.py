"""Registration saga (level 1): create the Supabase auth user, then the profile; any failure undoes
what was done. Workflow id `registration:<keyed hash of the normalized e-mail>`."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.saga import SagaWorkflow, StepFailed

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
_DUPLICATES = frozenset(DUPLICATE_CODES.values())


@workflow.defn
class RegistrationWorkflow(SagaWorkflow):
    @workflow.run
    async def run(self, new: RegistrationInput) -> RegistrationResult:
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
            await saga.flush()
            raise ApplicationError(
                failed.message, type=_answer_for(failed.step, failed.type), non_retryable=True
            ) from failed
        saga.complete()
        await saga.flush()
        return RegistrationResult(profile_id=profile.profile_id, auth_user_id=user.auth_user_id)


def _answer_for(step: str | None, cause: str | None) -> ErrorCode:
    """Which documented error a failed registration answers with."""
    if cause in _DUPLICATES:
        return ErrorCode(cause)
    if step == "auth_user":
        return ErrorCode.AUTH_FAILED
    return ErrorCode.REGISTRATION_FAILED
