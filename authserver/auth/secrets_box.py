"""Small secrets kept at rest (TOTP seeds), AES-256-GCM under the key-encryption key."""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app

from authserver.keys import load_kek

__all__ = ["seal", "unseal"]

_VERSION = b"\x01"


def seal(value: str, *, purpose: str) -> bytes:
    """Encrypt ``value``; ``purpose`` (e.g. "totp:<user id>") binds it to its row."""
    nonce = os.urandom(12)
    key = AESGCM(load_kek(current_app.config["KEY_ENCRYPTION_KEY"]))
    return _VERSION + nonce + key.encrypt(nonce, value.encode(), purpose.encode())


def unseal(blob: bytes, *, purpose: str) -> str | None:
    """Decrypt a sealed value; None when it was sealed for another purpose or key."""
    if not blob or blob[:1] != _VERSION:
        return None
    key = AESGCM(load_kek(current_app.config["KEY_ENCRYPTION_KEY"]))
    try:
        return key.decrypt(blob[1:13], blob[13:], purpose.encode()).decode()
    except (InvalidTag, ValueError):
        return None
