"""AppMax Apphooks: the envelope parses, events sort into grant/revoke, the URL token checks."""

from __future__ import annotations

from decimal import Decimal

from providers.appmax import GRANT_EVENTS, REVOKE_EVENTS, Apphook, envelope, verify_token


def test_standard_envelope_parses() -> None:
    """The "Standard" template's order id, total, payment type and customer are read."""
    body = envelope(
        "OrderPaidByPix",
        {
            "id": 91234,
            "total": 49.9,
            "status": "aprovado",
            "payment_type": "Pix",
            "customer": {"firstname": "Ana", "lastname": "Souza", "email": "a@x.com", "phone": 11},
        },
    )
    hook = Apphook.model_validate(body)
    assert (hook.data.id, hook.data.total, hook.data.customer.phone) == (
        "91234",
        Decimal("49.9"),
        "11",
    )
    assert hook.grants and not hook.revokes
    assert hook.dedupe_key() == "OrderPaidByPix:91234"


def test_events_sort_into_grant_revoke_and_ignored() -> None:
    """Only the documented events grant or revoke; anything else does neither."""
    assert {"OrderApproved", "OrderPaid", "OrderPaidByPix"} == GRANT_EVENTS
    assert {"OrderRefund", "OrderChargeBackInTreatment"} == REVOKE_EVENTS
    other = Apphook.model_validate(envelope("OrderBilletCreated", {"id": 1}))
    assert not other.grants and not other.revokes


def test_token_check_is_exact_and_refuses_blanks() -> None:
    """Only the exact token passes; an empty expected or given token never does."""
    assert verify_token("s3cret", "s3cret")
    assert not verify_token("s3cret", "s3cre")
    assert not verify_token("s3cret", None)
    assert not verify_token("", "")


def test_products_are_read_when_the_template_has_them() -> None:
    """`data.products[]` as AppMax's order API shapes them ({sku, name, qty, price}), and
    `total_products`; a Standard Apphook without them parses with none."""
    body = envelope(
        "OrderPaid",
        {
            "id": 7,
            "total": 52.37,
            "total_products": 49.9,
            "products": [{"sku": "entrega-acesso", "name": "Acesso", "qty": 1, "price": 49.9}],
        },
    )
    hook = Apphook.model_validate(body)
    assert hook.data.total_products == Decimal("49.9")
    assert hook.data.products and hook.data.products[0].sku == "entrega-acesso"
    assert hook.data.products[0].qty == 1
    bare = Apphook.model_validate(envelope("OrderPaid", {"id": 7, "total": 49.9}))
    assert bare.data.products is None and bare.data.total_products is None
