"""Generated passwords: made in an activity, kept only as a Fernet token until e-mailed."""

from __future__ import annotations

import base64
import hashlib
import secrets

from cryptography.fernet import Fernet


def cipher(secret: str) -> Fernet:
    """A Fernet keyed with SHA-256 of CREDENTIALS_KEY (any string, not a Fernet key itself)."""
    if not secret:
        raise ValueError("CREDENTIALS_KEY is not set")
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest()))


def generate_password() -> str:
    """16 URL-safe characters (96 bits) the customer can type."""
    return secrets.token_urlsafe(12)
