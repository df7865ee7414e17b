"""Encrypting secret parameter values until the API call (Fernet, key derived from SECRET_KEY)."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

_INFO = b"nexthink-workflows-portal/run-secret-params/v1"


class SecretsUnreadable(Exception):
    """Stored secrets cannot be decrypted (SECRET_KEY changed, or the text was tampered with)."""


def _fernet() -> Fernet:
    """A Fernet keyed by HKDF-SHA256 of SECRET_KEY, so the raw SECRET_KEY never keys data."""
    secret_key = settings.SECRET_KEY
    if not secret_key:
        # Django refuses an empty SECRET_KEY already; this only tells the type checker.
        raise ImproperlyConfigured("SECRET_KEY is not set; set SECRET_KEY or SECRET_KEY_FILE.")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO)
    key = hkdf.derive(secret_key.encode("utf-8"))
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt_dict(values: Mapping[str, str]) -> str:
    """Encrypt a string-to-string mapping; an empty mapping gives "" (nothing to store)."""
    if not values:
        return ""
    plain = json.dumps(dict(values), separators=(",", ":"), sort_keys=True).encode("utf-8")
    return _fernet().encrypt(plain).decode("ascii")


def decrypt_dict(token: str) -> dict[str, str]:
    """Decrypt what encrypt_dict gave; "" gives {}. Raises SecretsUnreadable otherwise."""
    if not token:
        return {}
    try:
        plain = _fernet().decrypt(token.encode("ascii"))
    except (InvalidToken, UnicodeEncodeError) as exc:
        raise SecretsUnreadable(
            "The secret parameters of this run cannot be decrypted (was SECRET_KEY changed?)."
        ) from exc
    data = json.loads(plain)
    return {str(k): str(v) for k, v in data.items()}
