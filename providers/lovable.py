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
    # On `created: false`: the order whose request created the user, so that an order whose
    # first answer was lost can tell it made the user itself (docs/providers.md).
    order_id: str | None = None

    def created_by(self, order_id: str) -> bool:
        """Whether this order's request made the user, whichever attempt got the answer."""
        return self.created or self.order_id == order_id


class LovableClient(ServiceClient):
    """Errors arrive as {"error": "<code>", "message": "..."} (Entrega's contract with the app)."""

    service = "lovable"

    def __init__(self, http: httpx.AsyncClient, service_key: str | SecretStr) -> None:
        super().__init__(http, service_key)

    async def create_user(
        self, email: str, password: str, full_name: str, order_id: str, idempotency_key: str
    ) -> LovableUser:
        """The app's user for `email`: created now (201, created=True) or already there (200,
        created=False with the creating order's id, password unchanged). A replay with the same key
        answers the first result, unless that answer was lost."""
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
