"""Digests and fresh random values: what the store keeps instead of a secret, and the
secrets themselves (codes, refresh tokens, handles)."""

from __future__ import annotations

import hashlib
import secrets


def sha256_hex(value: str) -> str:
    """The SHA-256 of ``value`` (UTF-8; lone surrogates kept) as 64 hex digits: what is
    stored of a code, a refresh token, a secret or a handle, never the value itself."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def new_secret(nbytes: int = 32) -> str:
    """A fresh high-entropy value (default 256 bits), URL safe."""
    return secrets.token_urlsafe(nbytes)


def new_identifier(nbytes: int = 18) -> str:
    """A fresh public identifier (a ``client_id``): URL safe like :func:`new_secret`, but
    never beginning with ``-`` or ``_``, so that it can be typed as an argument of the
    command line (``authserver client show ID``) without being read as an option."""
    while True:
        value = secrets.token_urlsafe(nbytes)
        if value[0] not in "-_":
            return value
