"""Field validators for signup data: each returns the normalized value or raises a ValueError with
a pt-BR message, so pydantic reports it as a 422 on that field.

The errors are `PydanticCustomError`s (a ValueError): a plain ValueError would reach people as
"Value error, <message>"."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, Field, StringConstraints
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
    check_person_name(value)
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
    if any(unicodedata.category(char) == "Cc" for char in value):
        # A NUL or another control character cannot be typed at a login form, and NUL cannot
        # be stored by the auth provider's database.
        raise _invalid("A senha não pode conter caracteres de controle")
    if not re.search(r"[A-Za-z]", value) or not re.search(r"\d", value):
        raise _invalid("A senha deve conter letras e números")
    return value


# --- One rule per field kind ------------------------------------------------------------------
# Every request model, query and path parameter takes its strings through one of these types, so
# a field kind is checked the same way everywhere and the OpenAPI document says what is accepted.
# PostgreSQL refuses NUL in text and jsonb: a NUL let through answers 200 and then fails every
# write of the value forever; an id longer than Temporal's limit can never start its workflow.

# Control characters (NUL included), format characters (zero-width and bidi controls such as
# U+200B, U+202E, U+2066), surrogates, private-use and unassigned code points.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def refused_character(value: str) -> str | None:
    """The first character no text field accepts, or None."""
    for char in value:
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            return char
    return None


def has_nul(value: object) -> bool:
    """Whether any string (key or value) anywhere in a parsed JSON document holds a NUL, which
    PostgreSQL cannot store in jsonb."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_nul(item) for item in value)
    return False


def _clean_text(value: str) -> str:
    if refused_character(value) is not None:
        raise _invalid("Texto com caracteres de controle ou invisíveis")
    return value.strip()


def _not_blank(value: str) -> str:
    if not value:
        raise _invalid("Informe um texto")
    return value


# Free text: no control, invisible or bidi characters, surrounding spaces removed, not blank.
_TEXT_RULE = "no control, invisible or bidi characters"
Text = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200),
    AfterValidator(_clean_text),
    AfterValidator(_not_blank),
    Field(description=f"1 to 200 characters, {_TEXT_RULE}"),
]
ShortText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    AfterValidator(_clean_text),
    AfterValidator(_not_blank),
    Field(description=f"1 to 64 characters, {_TEXT_RULE}"),
]
# A person's name (recipient, customer): the same rule, up to 120 characters.
PersonName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=120),
    AfterValidator(_clean_text),
    AfterValidator(_not_blank),
    Field(description=f"1 to 120 characters, {_TEXT_RULE}"),
]
# An e-mail as a provider sends it: checked for text safety and length only (a provider's
# odd address is the order's problem to park, not a reason to refuse the payment).
ProviderEmail = Annotated[
    str,
    StringConstraints(min_length=1, max_length=320),
    AfterValidator(_clean_text),
    Field(description=f"1 to 320 characters, {_TEXT_RULE}"),
]


# Provider ids end up in workflow ids (`purchase:appmax:<id>`), signed manifests and log lines:
# ASCII letters, digits and `_ . & -` only (Asaas event ids carry `&`), at most 100 characters.
PROVIDER_ID_PATTERN = r"^[A-Za-z0-9_.&-]{1,100}$"
ProviderId = Annotated[
    str,
    StringConstraints(pattern=PROVIDER_ID_PATTERN),
    Field(description="A provider's id: ASCII letters, digits and _ . & - (1 to 100)"),
]
_PROVIDER_ID = re.compile(PROVIDER_ID_PATTERN)


def is_provider_id(value: str | None) -> bool:
    return value is not None and _PROVIDER_ID.fullmatch(value) is not None


PLAN_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
PlanId = Annotated[
    str,
    StringConstraints(pattern=PLAN_ID_PATTERN),
    Field(
        description="An existing plan (e.g. `basic`; unknown: 422): ASCII letters, digits, _ and -"
    ),
]

# An order id, a provider's order id or a purchase workflow id (`purchase:<provider>:<id>`).
ORDER_KEY_PATTERN = r"^[A-Za-z0-9_.&:-]{1,200}$"
OrderKey = Annotated[
    str,
    StringConstraints(pattern=ORDER_KEY_PATTERN),
    Field(description="Order id, provider order id or purchase workflow id"),
]

# Visible ASCII only: the key is stored and compared byte for byte.
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]{1,200}$"
IdempotencyKeyHeader = Annotated[
    str,
    StringConstraints(pattern=IDEMPOTENCY_KEY_PATTERN),
    Field(description="1-200 visible ASCII"),
]

# `\d` would also match Arabic-Indic or full-width digits, which the database CHECK refuses.
CEP_PATTERN = r"^[0-9]{5}-?[0-9]{3}$"
_CEP = re.compile(CEP_PATTERN)


def normalize_cep(value: str) -> str:
    """A CEP: 8 ASCII digits, hyphen after the fifth optional; answered without the hyphen."""
    if not _CEP.fullmatch(value.strip()):
        raise _invalid("CEP inválido: informe 8 dígitos (ex.: 01310-100)")
    return value.strip().replace("-", "")


def check_person_name(value: str) -> str:
    """A person's name as typed: no control, invisible or bidi characters."""
    if refused_character(value) is not None:
        raise _invalid("O nome contém caracteres de controle ou invisíveis")
    return value


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """Whether a JSON text nests arrays/objects deeper than `limit` (strings skipped), checked
    before parsing: the parser recurses and a deep enough document raises RecursionError."""
    depth = 0
    for match in _JSON_TOKENS.finditer(body):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif token in (b"]", b"}"):
            depth -= 1
    return False


_JSON_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
