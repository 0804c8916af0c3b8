"""Field validators for signup data: each returns the normalized value or raises ValueError with a
pt-BR message, so pydantic reports it as a 422 on that field."""

from __future__ import annotations

import re

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from validate_docbr import CNPJ, CPF

_NON_DIGITS = re.compile(r"\D")
_DOCUMENT_PUNCTUATION = re.compile(r"[\s./-]")
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 72  # bcrypt, which Supabase Auth uses, ignores anything longer


def normalize_email(value: str) -> str:
    """A syntactically valid address, lower-cased (the key of `registration:<e-mail>`)."""
    try:
        # Deliverability (DNS) is not checked: registration must not depend on the resolver.
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError:
        raise ValueError("E-mail inválido") from None
    return result.normalized.lower()


def normalize_phone(value: str) -> str:
    """A valid Brazilian number in E.164 (+55DDXXXXXXXXX); a missing +55 is assumed."""
    try:
        number = phonenumbers.parse(value, "BR")
    except phonenumbers.NumberParseException:
        raise ValueError("Telefone inválido") from None
    if number.country_code != 55 or not phonenumbers.is_valid_number(number):
        raise ValueError("Telefone inválido: informe um número brasileiro com DDD")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_cpf_cnpj(value: str) -> str:
    """A CPF (11 digits) or CNPJ (14 digits) whose check digits are right, digits only."""
    if _DOCUMENT_PUNCTUATION.sub("", value) != _NON_DIGITS.sub("", value):
        raise ValueError("CPF/CNPJ inválido")
    digits = _NON_DIGITS.sub("", value)
    # Check the length ourselves: the library pads short inputs with zeros.
    if len(digits) == 11 and CPF().validate(digits):
        return digits
    if len(digits) == 14 and CNPJ().validate(digits):
        return digits
    raise ValueError("CPF/CNPJ inválido")


def normalize_name(value: str) -> str:
    """Two to 120 characters once surrounding and repeated spaces are removed."""
    name = " ".join(value.split())
    if len(name) < 2:
        raise ValueError("Informe o nome completo")
    if len(name) > 120:
        raise ValueError("Nome muito longo (máximo 120 caracteres)")
    return name


def check_password(value: str) -> str:
    """At least 8 characters with a letter and a digit; at most 72 (bcrypt's limit)."""
    if len(value) < PASSWORD_MIN_LENGTH:
        raise ValueError(f"A senha deve ter pelo menos {PASSWORD_MIN_LENGTH} caracteres")
    if len(value.encode()) > PASSWORD_MAX_LENGTH:
        raise ValueError(f"A senha deve ter no máximo {PASSWORD_MAX_LENGTH} bytes")
    if not re.search(r"[A-Za-z]", value) or not re.search(r"\d", value):
        raise ValueError("A senha deve conter letras e números")
    return value
