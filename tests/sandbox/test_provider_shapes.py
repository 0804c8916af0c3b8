"""Bodies, filters and validation of the emulated APIs follow docs/providers.md."""

from __future__ import annotations

import pytest

from tests.conftest import TEST_SECRETS
from tests.support import SandboxHandle

pytestmark = pytest.mark.sandbox

ASAAS = {"access_token": TEST_SECRETS["asaas_api_key"], "User-Agent": "Entrega"}
SUPABASE = {
    "apikey": TEST_SECRETS["supabase_service_key"],
    "Authorization": f"Bearer {TEST_SECRETS['supabase_service_key']}",
}


async def customer(sandbox: SandboxHandle, **fields: object) -> dict[str, object]:
    body = {"name": "Ana", "cpfCnpj": "52998224725", **fields}
    response = await sandbox.http.post("/asaas/v3/customers", json=body, headers=ASAAS)
    assert response.status_code == 200, response.text
    made: dict[str, object] = response.json()
    return made


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"cpfCnpj": "111.111.111-11"}, "invalid_cpfCnpj"),
        ({"cpfCnpj": ""}, "invalid_cpfCnpj"),
        ({"name": ""}, "invalid_name"),
        ({"email": "not-an-email"}, "invalid_email"),
        ({"mobilePhone": "123"}, "invalid_mobilePhone"),
    ],
)
async def test_asaas_customer_validation_uses_errors_shape(
    sandbox: SandboxHandle, fields: dict[str, object], code: str
) -> None:
    """Invalid customer data answers 400 {"errors": [{"code", "description"}]}."""
    body = {"name": "Ana", "cpfCnpj": "52998224725", **fields}
    response = await sandbox.http.post("/asaas/v3/customers", json=body, headers=ASAAS)
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["code"] == code and error["description"]


async def test_asaas_accepts_a_cnpj_and_allows_duplicates(sandbox: SandboxHandle) -> None:
    """A valid CNPJ makes a JURIDICA customer, and Asaas happily creates a duplicate."""
    first = await customer(sandbox, cpfCnpj="11.222.333/0001-81", externalReference="p1")
    second = await customer(sandbox, cpfCnpj="11222333000181", externalReference="p1")
    assert first["personType"] == "JURIDICA" and first["id"] != second["id"]


async def test_asaas_list_filters_and_pages(sandbox: SandboxHandle) -> None:
    """The list endpoint filters by externalReference and pages with offset/limit/hasMore."""
    for n in range(3):
        await customer(sandbox, externalReference=f"p{n}")
    listed = (
        await sandbox.http.get("/asaas/v3/customers", params={"limit": 2}, headers=ASAAS)
    ).json()
    assert (listed["object"], listed["hasMore"], listed["totalCount"], len(listed["data"])) == (
        "list",
        True,
        3,
        2,
    )
    only = await sandbox.http.get(
        "/asaas/v3/customers", params={"externalReference": "p1"}, headers=ASAAS
    )
    assert [c["externalReference"] for c in only.json()["data"]] == ["p1"]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"customer": "cus_nope"}, "invalid_customer"),
        ({"billingType": "CASH"}, "invalid_billingType"),
        ({"value": 0}, "invalid_value"),
        ({"nextDueDate": "01/12/2026"}, "invalid_nextDueDate"),
        ({"cycle": "DAILY"}, "invalid_cycle"),
    ],
)
async def test_asaas_subscription_validation(
    sandbox: SandboxHandle, fields: dict[str, object], code: str
) -> None:
    """Each invalid subscription field answers 400 with its own code."""
    made = await customer(sandbox)
    body = {
        "customer": made["id"],
        "billingType": "PIX",
        "value": 49.9,
        "nextDueDate": "2026-12-01",
        "cycle": "MONTHLY",
        **fields,
    }
    response = await sandbox.http.post("/asaas/v3/subscriptions", json=body, headers=ASAAS)
    assert (response.status_code, response.json()["errors"][0]["code"]) == (400, code)


async def test_asaas_delete_of_unknown_is_404(sandbox: SandboxHandle) -> None:
    """Deleting a customer twice: first {deleted: true, id}, then 404."""
    made = await customer(sandbox)
    first = await sandbox.http.delete(f"/asaas/v3/customers/{made['id']}", headers=ASAAS)
    again = await sandbox.http.delete(f"/asaas/v3/customers/{made['id']}", headers=ASAAS)
    assert first.json() == {"deleted": True, "id": made["id"]}
    assert again.status_code == 404 and "errors" in again.json()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"password": "s3cret-pass"}, 400, "validation_failed"),
        ({"email": "nope", "password": "s3cret-pass"}, 400, "validation_failed"),
        ({"email": "a@x.com", "password": "123"}, 422, "weak_password"),
    ],
)
async def test_supabase_create_validation(
    sandbox: SandboxHandle, body: dict[str, object], status: int, code: str
) -> None:
    """GoTrue's validation answers {code, error_code, msg}."""
    response = await sandbox.http.post("/supabase/auth/v1/admin/users", json=body, headers=SUPABASE)
    assert (response.status_code, response.json()["error_code"]) == (status, code)
    assert response.json()["code"] == status


async def test_supabase_user_shape_and_filter(sandbox: SandboxHandle) -> None:
    """Create answers 200 with the user; list filters by substring; unknown delete is 404."""
    made = await sandbox.http.post(
        "/supabase/auth/v1/admin/users",
        json={"email": "Ana@X.com", "password": "s3cret-pass", "email_confirm": True},
        headers=SUPABASE,
    )
    user = made.json()
    assert made.status_code == 200
    assert (user["email"], user["aud"]) == ("ana@x.com", "authenticated")
    assert user["email_confirmed_at"] is not None
    listed = await sandbox.http.get(
        "/supabase/auth/v1/admin/users", params={"filter": "ana@"}, headers=SUPABASE
    )
    assert [u["id"] for u in listed.json()["users"]] == [user["id"]]
    gone = await sandbox.http.delete(
        "/supabase/auth/v1/admin/users/00000000-0000-0000-0000-000000000000", headers=SUPABASE
    )
    assert (gone.status_code, gone.json()["error_code"]) == (404, "user_not_found")


async def test_mp_unknown_payment_is_404_in_mp_shape(sandbox: SandboxHandle) -> None:
    """MP's 404 body has message, error, status and cause."""
    response = await sandbox.http.get(
        "/mercadopago/v1/payments/42",
        headers={"Authorization": f"Bearer {TEST_SECRETS['mercadopago_access_token']}"},
    )
    assert response.status_code == 404
    assert set(response.json()) == {"message", "error", "status", "cause"}


async def test_lovable_validates_its_body(sandbox: SandboxHandle) -> None:
    """An invalid create-user body answers 422 invalid_body listing the problems."""
    response = await sandbox.http.post(
        "/lovable/create-user",
        json={"email": "nope", "password": "short"},
        headers={"Authorization": f"Bearer {TEST_SECRETS['lovable_service_key']}"},
    )
    assert (response.status_code, response.json()["error"]) == (422, "invalid_body")
    assert "full_name" in response.json()["message"]


async def test_mp_payment_says_what_was_bought(sandbox: SandboxHandle) -> None:
    """`additional_info.items` names entrega-acesso unless a test names another (or none), and
    `currency_id` is BRL unless given."""
    headers = {"Authorization": f"Bearer {TEST_SECRETS['mercadopago_access_token']}"}
    found = []
    for fields in ({}, {"product_id": "outro", "currency": "USD"}, {"product_id": None}):
        made = await sandbox.http.post(
            "/_sandbox/mercadopago/payments",
            json={"payer_email": "a@x.com", "amount": "49.90", **fields},
        )
        got = await sandbox.http.get(
            f"/mercadopago/v1/payments/{made.json()['id']}", headers=headers
        )
        payment = got.json()
        found.append(
            (payment["currency_id"], [i["id"] for i in payment["additional_info"]["items"]])
        )
    assert found == [("BRL", ["entrega-acesso"]), ("USD", ["outro"]), ("BRL", [])]
