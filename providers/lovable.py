"""The Lovable app's admin edge functions, where paying customers get their login."""

from __future__ import annotations

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr

from providers.base import ServiceClient
from providers.errors import NotFoundError


class LovableUser(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    user_id: str
    created: bool


class LovableClient(ServiceClient):
    """Errors arrive as {"error": "<code>", "message": "..."} (Entrega's contract with the app)."""

    service = "lovable"

    def __init__(self, http: httpx.AsyncClient, service_key: str | SecretStr) -> None:
        super().__init__(http, service_key)

    async def create_user(
        self, email: str, password: str, full_name: str, order_id: str, idempotency_key: str
    ) -> LovableUser:
        """The app's user for `email`: created now (201, created=True) or already there (200,
        created=False, password unchanged). A replay with the same key answers the first result."""
        response = await self._request(
            "POST",
            "/create-user",
            json={
                "email": email,
                "password": password,
                "full_name": full_name,
                "order_id": order_id,
            },
            headers={"Idempotency-Key": idempotency_key},
        )
        return self._parse(LovableUser, self._json(response))

    async def deactivate_user(self, user_id: str) -> None:
        """Deactivate; idempotent, and an unknown user counts as done."""
        try:
            await self._request("POST", "/deactivate-user", json={"user_id": user_id})
        except NotFoundError:
            return
