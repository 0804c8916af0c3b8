"""AsaasClient: look-up-before-create idempotency, pagination, headers and errors[] mapping."""

from __future__ import annotations

import json

import httpx
import pytest

from providers.asaas import PAGE_SIZE, AsaasClient
from providers.errors import PermanentError
from tests.providers.calls import SECRET
from tests.providers.conftest import Script


def customer(n: int, ref: str = "prof-1") -> dict[str, object]:
    return {"object": "customer", "id": f"cus_{n}", "name": "Ana", "externalReference": ref}


def page(items: list[dict[str, object]], has_more: bool = False) -> dict[str, object]:
    return {"object": "list", "hasMore": has_more, "totalCount": len(items), "data": items}


def client(http: httpx.AsyncClient) -> AsaasClient:
    return AsaasClient(http, SECRET, "Entrega")


async def test_ensure_customer_reuses_an_existing_one(script: Script) -> None:
    """When our externalReference is already there, nothing is created (a retry is harmless)."""
    script.answer(200, json=page([customer(1)]))
    async with script.client() as http:
        found, created = await client(http).ensure_customer(
            "Ana", "52998224725", "a@x.com", None, "prof-1"
        )
    assert (found.id, created) == ("cus_1", False)
    assert [r.method for r in script.requests] == ["GET"]
    assert script.requests[0].url.params["externalReference"] == "prof-1"


async def test_ensure_customer_creates_when_absent(script: Script) -> None:
    """With no match it creates exactly one customer carrying our externalReference."""
    script.answer(200, json=page([])).answer(200, json=customer(2))
    async with script.client() as http:
        made, created = await client(http).ensure_customer(
            "Ana", "529.982.247-25", "a@x.com", "11987654321", "prof-1"
        )
    assert (made.id, created) == ("cus_2", True)
    body = json.loads(script.requests[1].content)
    assert body["externalReference"] == "prof-1" and body["cpfCnpj"] == "529.982.247-25"


async def test_find_customer_ignores_other_references(script: Script) -> None:
    """A loose server-side filter cannot hand us someone else's customer."""
    script.answer(200, json=page([customer(3, ref="prof-10")]))
    async with script.client() as http:
        assert await client(http).find_customer("prof-1") is None


async def test_every_request_carries_key_and_user_agent(script: Script) -> None:
    """Asaas needs `access_token` and a User-Agent naming the application on every call."""
    script.answer(200, json=page([]))
    async with script.client() as http:
        await client(http).list_customers()
    headers = script.requests[0].headers
    assert (headers["access_token"], headers["user-agent"]) == (SECRET, "Entrega")


async def test_list_customers_follows_every_page(script: Script) -> None:
    """list_customers keeps asking with a growing offset while hasMore is true."""
    first = [customer(n) for n in range(PAGE_SIZE)]
    script.answer(200, json=page(first, has_more=True)).answer(200, json=page([customer(999)]))
    async with script.client() as http:
        customers = await client(http).list_customers()
    assert len(customers) == PAGE_SIZE + 1
    assert [r.url.params["offset"] for r in script.requests] == ["0", str(PAGE_SIZE)]


@pytest.mark.parametrize("method", ["delete_customer", "delete_subscription"])
async def test_delete_of_something_already_gone_succeeds(script: Script, method: str) -> None:
    """A 404 on delete means the work is done, so a retried compensation succeeds."""
    script.answer(404, json={"errors": [{"code": "not_found", "description": "Não encontrado"}]})
    async with script.client() as http:
        await getattr(client(http), method)("cus_404")


async def test_errors_shape_gives_code_and_descriptions(script: Script) -> None:
    """A 400 with errors[] is permanent, coded by the first error, described by all."""
    errors = [
        {"code": "invalid_cpfCnpj", "description": "O CPF/CNPJ informado é inválido."},
        {"code": "invalid_email", "description": "O email informado é inválido."},
    ]
    script.answer(400, json={"errors": errors})
    async with script.client() as http:
        with pytest.raises(PermanentError) as raised:
            await client(http).create_customer("Ana", "111", "x", None, "prof-1")
    assert raised.value.code == "invalid_cpfCnpj"
    assert "CPF/CNPJ" in raised.value.message and "email" in raised.value.message


async def test_find_subscription_by_reference(script: Script) -> None:
    """find_subscription answers the live subscription with our reference, parsed."""
    sub = {
        "id": "sub_1",
        "customer": "cus_1",
        "billingType": "PIX",
        "value": 49.9,
        "nextDueDate": "2026-12-01",
        "cycle": "MONTHLY",
        "externalReference": "checkout:p1:1",
    }
    script.answer(200, json=page([sub]))
    async with script.client() as http:
        found = await client(http).find_subscription("checkout:p1:1")
    assert found is not None and found.next_due_date.isoformat() == "2026-12-01"
    assert script.requests[0].url.path == "/subscriptions"
