"""Registration input is validated per field before anything is created."""

from __future__ import annotations

import httpx
import pytest

from api import validation
from api.app import create_app
from api.validation import normalize_cpf_cnpj, normalize_email, normalize_phone
from tests.conftest import make_settings

VALID = {
    "name": "Maria da Silva",
    "email": "Maria@Example.com",
    "phone": "(11) 98765-4321",
    "cpfCnpj": "529.982.247-25",
    "password": "segredo123",
}


@pytest.fixture
async def api():
    # No database or Temporal: invalid input must be refused before either is touched.
    app = create_app(make_settings(database_url="postgresql:///unused"), pool=object())
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client


LONG_PASSWORD = "senha1" + "é" * 34  # 40 characters, 74 bytes in UTF-8


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", " ", "Informe o nome completo"),
        ("email", "not-an-email", "E-mail inválido"),
        ("phone", "12345", "Telefone inválido: informe um número brasileiro com DDD"),
        ("phone", "+1 202 555 0143", "Telefone inválido: informe um número brasileiro com DDD"),
        ("cpfCnpj", "529.982.247-26", "CPF/CNPJ inválido"),
        ("cpfCnpj", "111.111.111-11", "CPF/CNPJ inválido"),
        ("cpfCnpj", "12.345.678/0001-00", "CPF/CNPJ inválido"),
        ("cpfCnpj", "5299822472", "CPF/CNPJ inválido"),
        ("password", "curta1", "A senha deve ter pelo menos 8 caracteres"),
        ("password", "somenteletras", "A senha deve conter letras e números"),
        ("password", LONG_PASSWORD, validation.PASSWORD_TOO_LONG),
    ],
)
async def test_each_invalid_field_is_named(api, field, value, message) -> None:
    """An invalid value answers 422 validation_error naming exactly that field, with the clean
    pt-BR message (no "Value error, " prefix from pydantic)."""
    response = await api.post("/api/v1/profiles/register", json={**VALID, field: value})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert [(d["field"], d["message"]) for d in error["details"]] == [(field, message)]


def test_password_limit_is_72_bytes() -> None:
    """The limit counts UTF-8 bytes, not characters, and the message says so: 72 ASCII
    characters pass, 40 characters with accented letters (74 bytes) do not."""
    assert validation.check_password("a1" * 36) == "a1" * 36
    with pytest.raises(ValueError, match="72 bytes"):
        validation.check_password(LONG_PASSWORD)
    assert "acentuadas" in validation.PASSWORD_TOO_LONG


async def test_missing_fields_are_all_named(api) -> None:
    """An empty body names every required field at once."""
    response = await api.post("/api/v1/profiles/register", json={})
    assert response.status_code == 422
    fields = {d["field"] for d in response.json()["error"]["details"]}
    assert fields == {"name", "email", "phone", "cpfCnpj", "password"}


def test_values_are_normalized() -> None:
    """E-mail is lower-cased, the phone becomes E.164 and documents lose their punctuation."""
    assert normalize_email(" Maria@Example.COM ") == "maria@example.com"
    assert normalize_phone("(11) 98765-4321") == "+5511987654321"
    assert normalize_phone("+55 21 3456-7890") == "+552134567890"
    assert normalize_cpf_cnpj("529.982.247-25") == "52998224725"
    assert normalize_cpf_cnpj("11.222.333/0001-81") == "11222333000181"


@pytest.mark.db
async def test_temporal_down_answers_registration_failed(settings, pool) -> None:
    """Valid data while Temporal is unreachable: the documented 503 registration_failed."""
    from tests.support import free_port

    app = create_app(
        settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"}), pool=pool
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            response = await client.post("/api/v1/profiles/register", json=VALID)
    assert response.status_code == 503
    error = response.json()["error"]
    assert (error["code"], error["message"]) == (
        "registration_failed",
        "Erro ao criar conta. Tente novamente em alguns instantes.",
    )
