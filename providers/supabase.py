"""Supabase Auth (GoTrue) admin API: the SaaS's own login accounts."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from providers.base import ServiceClient, segment, text
from providers.errors import ConflictError, NotFoundError, ProviderError

PAGE_SIZE = 200
_DUPLICATE_CODES = ("email_exists", "phone_exists", "user_already_exists")


class AuthUser(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    email: str | None = None
    phone: str | None = None
    user_metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: str | None = None


class SupabaseAuthClient(ServiceClient):
    """Errors arrive as {"code": 422, "error_code": "email_exists", "msg": "..."}."""

    service = "supabase"

    def __init__(self, http: httpx.AsyncClient, service_key: str | SecretStr) -> None:
        super().__init__(http, service_key)

    def _auth_headers(self) -> dict[str, str]:
        key = self._secret.get_secret_value()
        return {"apikey": key, "Authorization": f"Bearer {key}"}

    def _error_fields(self, body: Any) -> tuple[str | None, str | None]:
        if not isinstance(body, dict):
            return None, None
        # GoTrue: error_code + msg; its token endpoint and older servers: error + description.
        code = body.get("error_code") or body.get("error")
        message = body.get("msg") or body.get("message") or body.get("error_description")
        return text(code), text(message)

    def _error(self, response: httpx.Response) -> ProviderError:
        error = super()._error(response)
        if error.code in _DUPLICATE_CODES:
            # GoTrue answers duplicates with 422, which would otherwise read as invalid data.
            return ConflictError(self.service, error.message, status=error.status, code=error.code)
        return error

    async def create_user(
        self,
        email: str,
        phone: str | None,
        password: str,
        user_metadata: dict[str, Any] | None = None,
    ) -> AuthUser:
        """A confirmed user; ConflictError with code email_exists / phone_exists on duplicates."""
        body: dict[str, Any] = {
            "email": email,
            "password": password,
            "email_confirm": True,
            "user_metadata": user_metadata or {},
        }
        if phone:
            body |= {"phone": phone, "phone_confirm": True}
        response = await self._request("POST", "/auth/v1/admin/users", json=body)
        return self._parse(AuthUser, self._json(response))

    async def find_user_by_email(self, email: str) -> AuthUser | None:
        """The user with exactly this e-mail (case-insensitive); the API's filter is a substring."""
        wanted = email.strip().lower()
        for user in await self._users(filter_=wanted):
            if (user.email or "").lower() == wanted:
                return user
        return None

    async def delete_user(self, user_id: str) -> None:
        """Delete; an unknown user (404 user_not_found) counts as done."""
        try:
            await self._request("DELETE", f"/auth/v1/admin/users/{segment(user_id)}")
        except NotFoundError:
            return

    async def list_users(self) -> list[AuthUser]:
        """Every user, all pages."""
        return await self._users()

    async def sign_in_with_password(self, email: str, password: str) -> str:
        """A user's access token (HS256 JWT, aud "authenticated")."""
        response = await self._request(
            "POST",
            "/auth/v1/token",
            params={"grant_type": "password"},
            json={"email": email, "password": password},
        )
        body = self._json(response)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str):
            raise self._unexpected("the token answer has no access_token")
        return token

    async def _users(self, filter_: str | None = None) -> list[AuthUser]:
        users: list[AuthUser] = []
        page = 1
        while True:
            params: dict[str, str | int] = {"page": page, "per_page": PAGE_SIZE}
            if filter_:
                params["filter"] = filter_
            body = self._json(await self._request("GET", "/auth/v1/admin/users", params=params))
            batch = body.get("users") if isinstance(body, dict) else None
            if not isinstance(batch, list):
                raise self._unexpected("the users answer has no users list")
            users.extend(self._parse(AuthUser, item) for item in batch)
            if len(batch) < PAGE_SIZE:
                return users
            page += 1
