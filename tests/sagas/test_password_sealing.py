"""One password sealer for signups and purchases, still opening what signup sealed before."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet

from activities.accounts import seal_password, unseal_password
from activities.credentials import cipher
from tests.conftest import TEST_SECRETS, make_settings


def test_signup_and_purchases_seal_with_one_key() -> None:
    """A signup's sealed password opens with the purchases' cipher and the other way round."""
    settings = make_settings()
    key = TEST_SECRETS["credentials_key"]
    assert cipher(key).decrypt(seal_password(settings, "Senha-ção-1").encode()) == (
        "Senha-ção-1".encode()
    )
    assert unseal_password(settings, cipher(key).encrypt(b"pw-123456").decode()) == "pw-123456"


def test_a_password_sealed_by_the_former_signup_derivation_still_opens() -> None:
    """Registrations running across the upgrade carry tokens of the old signup key."""
    key = TEST_SECRETS["credentials_key"]
    digest = hashlib.sha256(b"entrega-signup:" + key.encode()).digest()
    former = Fernet(base64.urlsafe_b64encode(digest)).encrypt(b"segredo123").decode()
    assert unseal_password(make_settings(), former) == "segredo123"
