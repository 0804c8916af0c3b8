"""Who is calling: Supabase user JWTs (HS256, aud "authenticated") or an operator."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

import jwt
from fastapi import Depends, Header

from api.deps import SettingsDep
from api.errors import ApiError
from contracts.errors import ErrorCode
from settings import secret_matches

_UNAUTHORIZED = ApiError(ErrorCode.UNAUTHORIZED)


@dataclass(frozen=True)
class AuthenticatedUser:
    auth_user_id: uuid.UUID
    email: str | None


def _bearer(authorization: str | None) -> str:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise _UNAUTHORIZED
    return authorization[7:].strip()


def current_user(
    settings: SettingsDep, authorization: Annotated[str | None, Header()] = None
) -> AuthenticatedUser:
    """The user of a valid Supabase access token; 401 for anything else.

    Supabase signs `anon` and `service_role` keys with the same secret: only a signed-in user's
    token carries `role: authenticated`, so anything else is refused even with a `sub`."""
    token = _bearer(authorization)
    try:
        claims = jwt.decode(
            token,
            settings.secret("supabase_jwt_secret"),
            algorithms=["HS256"],
            audience="authenticated",
            options={"require": ["sub", "exp", "role"]},
        )
        if claims["role"] != "authenticated":
            raise _UNAUTHORIZED
        return AuthenticatedUser(uuid.UUID(claims["sub"]), claims.get("email"))
    except (jwt.PyJWTError, ValueError):
        raise _UNAUTHORIZED from None


def require_admin(
    settings: SettingsDep, authorization: Annotated[str | None, Header()] = None
) -> str:
    """Operators only: `Authorization: Bearer <ADMIN_TOKEN>` or one of ADMIN_TOKENS, compared in
    constant time. Answers the operator's name ("admin" for ADMIN_TOKEN), for the record."""
    token = _bearer(authorization)
    found = None
    for expected, name in settings.operator_tokens().items():
        if secret_matches(expected, token):
            found = name
    if found is None:
        raise _UNAUTHORIZED
    return found


CurrentUser = Annotated[AuthenticatedUser, Depends(current_user)]
AdminOnly = Depends(require_admin)
# The operator's name, where the route records what they did.
Operator = Annotated[str, Depends(require_admin)]
