"""The public HTTP paths: moving routes between routers and prefixes never changes them."""

from __future__ import annotations

from api.app import create_app
from tests.conftest import make_settings

# docs/interfaces.md: the documented paths, and the methods each answers.
EXPECTED = [
    ("/api/v1/admin/credit-purchases", "post"),
    ("/api/v1/admin/orders", "get"),
    ("/api/v1/admin/orders/{order_id}", "get"),
    ("/api/v1/admin/orders/{order_id}/cancel", "post"),
    ("/api/v1/admin/orders/{order_id}/retry", "post"),
    ("/api/v1/checkout/create", "post"),
    ("/api/v1/credits", "get"),
    ("/api/v1/profiles/register", "post"),
    ("/api/v1/shipments", "post"),
    ("/healthz", "get"),
    ("/readyz", "get"),
    ("/webhooks/appmax", "post"),
    ("/webhooks/asaas", "post"),
    ("/webhooks/mercadopago", "post"),
]


def test_openapi_paths_are_the_documented_ones() -> None:
    """Every router has its own prefix now; the OpenAPI document lists exactly the same paths
    and methods as before (`/metrics` stays out of it)."""
    schema = create_app(make_settings()).openapi()
    found = sorted((path, method) for path, item in schema["paths"].items() for method in item)
    assert found == EXPECTED
