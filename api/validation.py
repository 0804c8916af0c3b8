"""Field validators for signup data: each returns the normalized value or raises a ValueError with
a pt-BR message, so pydantic reports it as a 422 on that field.

The errors are `PydanticCustomError`s (a ValueError): a plain ValueError would reach people as
"Value error, <message>"."""

from __future__ import annotations

import re

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic_core import PydanticCustomError
from validate_docbr import CNPJ, CPF

_NON_DIGITS = re.compile(r"\D")
_DOCUMENT_PUNCTUATION = re.compile(r"[\s./-]")
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_BYTES = 72  # bcrypt, which Supabase Auth uses, ignores anything longer
PASSWORD_TOO_LONG = (
    f"A senha deve ter no máximo {PASSWORD_MAX_BYTES} bytes em UTF-8: até {PASSWORD_MAX_BYTES}"
    " caracteres sem acento; letras acentuadas contam como 2 e emojis como 4"
)


def _invalid(message: str) -> PydanticCustomError:
    """The error for a field, its message exactly as people should read it."""
    return PydanticCustomError("value_error", message)


def normalize_email(value: str) -> str:
    """A syntactically valid address, lower-cased (the key of `registration:<e-mail>`)."""
    try:
        # Deliverability (DNS) is not checked: registration must not depend on the resolver.
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError:
        raise _invalid("E-mail inválido") from None
    return result.normalized.lower()


def normalize_phone(value: str) -> str:
    """A valid Brazilian number in E.164 (+55DDXXXXXXXXX); a missing +55 is assumed."""
    try:
        number = phonenumbers.parse(value, "BR")
    except phonenumbers.NumberParseException:
        raise _invalid("Telefone inválido") from None
    if number.country_code != 55 or not phonenumbers.is_valid_number(number):
        raise _invalid("Telefone inválido: informe um número brasileiro com DDD")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_cpf_cnpj(value: str) -> str:
    """A CPF (11 digits) or CNPJ (14 digits) whose check digits are right, digits only."""
    if _DOCUMENT_PUNCTUATION.sub("", value) != _NON_DIGITS.sub("", value):
        raise _invalid("CPF/CNPJ inválido")
    digits = _NON_DIGITS.sub("", value)
    # Check the length ourselves: the library pads short inputs with zeros.
    if len(digits) == 11 and CPF().validate(digits):
        return digits
    if len(digits) == 14 and CNPJ().validate(digits):
        return digits
    raise _invalid("CPF/CNPJ inválido")


def normalize_name(value: str) -> str:
    """Two to 120 characters once surrounding and repeated spaces are removed."""
    name = " ".join(value.split())
    if len(name) < 2:
        raise _invalid("Informe o nome completo")
    if len(name) > 120:
        raise _invalid("Nome muito longo (máximo 120 caracteres)")
    return name


def check_password(value: str) -> str:
    """At least 8 characters with a letter and a digit; at most 72 bytes in UTF-8 (bcrypt's
    limit counts bytes: an accented letter takes two)."""
    if len(value) < PASSWORD_MIN_LENGTH:
        raise _invalid(f"A senha deve ter pelo menos {PASSWORD_MIN_LENGTH} caracteres")
    if len(value.encode()) > PASSWORD_MAX_BYTES:
        raise _invalid(PASSWORD_TOO_LONG)
    if not re.search(r"[A-Za-z]", value) or not re.search(r"\d", value):
        raise _invalid("A senha deve conter letras e números")
    return value
