"""The customer's e-mails: pt-BR, product name from settings, password only when it is new."""

from __future__ import annotations

from activities.credentials import cipher, generate_password
from activities.emails import brl, payment_method_label, render


def test_confirmation_says_received_and_access_follows() -> None:
    """The confirmation names the product, the amount, and announces the access e-mail."""
    subject, html, text = render(
        "purchase_confirmation",
        product_name="Acme Cursos",
        name="Ana <b>",
        order_id="purchase:mercadopago:1",
        amount=brl(4990),
        payment_method=None,
    )
    assert subject == "Recebemos o seu pedido do Acme Cursos"
    for body in (html, text):
        assert "Recebemos o seu pedido" in body and "R$ 49,90" in body
        assert "Em instantes você receberá outro e-mail com os seus dados de acesso" in body
    assert "Ana &lt;b&gt;" in html and "Ana <b>" in text


def test_confirmation_shows_how_the_customer_paid() -> None:
    """The confirmation names the payment method in the customer's words, as the old e-mail did."""
    for method, label in [("pix", "Pix"), ("Billet", "Boleto"), ("visa", "Cartão de crédito")]:
        _, html, text = render(
            "purchase_confirmation",
            product_name="Acme",
            name="Ana",
            order_id="x",
            amount=brl(4990),
            payment_method=payment_method_label(method),
        )
        assert f"Forma de pagamento: {label}" in html
        assert f"(R$ 49,90).\nForma de pagamento: {label}\n\nEm instantes" in text
    _, html, text = render(
        "purchase_confirmation",
        product_name="Acme",
        name="Ana",
        order_id="x",
        amount=None,
        payment_method=payment_method_label(None),
    )
    assert "Forma de pagamento" not in html and "Forma de pagamento" not in text
    assert payment_method_label("new_wallet") == "new_wallet"


def test_credentials_show_a_new_password_only() -> None:
    """A new account's e-mail carries its password; an existing account's never does."""
    common = {
        "product_name": "Acme",
        "name": "Ana",
        "order_id": "x",
        "email": "ana@example.com",
        "login_url": "https://app.example.com/login",
    }
    _, html, text = render("credentials", password="s3cret-Pass", **common)
    assert "s3cret-Pass" in html and "Senha provisória: s3cret-Pass" in text
    _, html, text = render("credentials", password=None, **common)
    assert "Senha provisória" not in text and "a mesma que você já usa" in text


def test_passwords_are_random_and_round_trip_through_the_cipher() -> None:
    """Generated passwords differ, and the key derived from any string decrypts its tokens."""
    first, second = generate_password(), generate_password()
    assert first != second and len(first) >= 16
    token = cipher("any string at all").encrypt(first.encode())
    assert first.encode() not in token
    assert cipher("any string at all").decrypt(token).decode() == first
