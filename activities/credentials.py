"""Passwords at rest: generated ones until e-mailed, and a signup's until the auth user exists.

One sealer for both, keyed from CREDENTIALS_KEY (any string, not a Fernet key itself).
"""

from __future__ import annotations

import base64
import hashlib
import secrets

from cryptography.fernet import Fernet, MultiFernet

# Signup once sealed under its own derivation of the key. Tokens it made may still sit in the
# histories of registrations running across an upgrade: they still open, none is made any more.
_FORMER_SIGNUP_CONTEXT = b"entrega-signup:"


def _fernet(material: bytes) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(material).digest()))


def cipher(secret: str) -> MultiFernet:
    """The sealer: encrypts with SHA-256 of CREDENTIALS_KEY, and opens what either derivation
    sealed."""
    if not secret:
        raise ValueError("CREDENTIALS_KEY is not set")
    key = secret.encode()
    return MultiFernet([_fernet(key), _fernet(_FORMER_SIGNUP_CONTEXT + key)])


def seal_password(secret: str, password: str) -> str:
    """A password as text that may travel through Temporal's history or sit in the database."""
    return cipher(secret).encrypt(password.encode()).decode()


def unseal_password(secret: str, sealed: str | bytes) -> str:
    token = sealed.encode() if isinstance(sealed, str) else sealed
    return cipher(secret).decrypt(token).decode()


def generate_password() -> str:
    """16 URL-safe characters (96 bits) the customer can type."""
    return secrets.token_urlsafe(12)
