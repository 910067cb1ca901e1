"""HTTP Basic client credentials (RFC 6749 §2.3.1), read in one place.

https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1: the client id and secret are
``application/x-www-form-urlencoded`` before base64, so both are URL-decoded here.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote

__all__ = ["basic_credentials"]


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """(client_id, secret) from HTTP Basic, URL-decoded (RFC 6749 §2.3.1); None if absent
    or malformed."""
    scheme, _, value = (authorization or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        text = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    client_id, colon, secret = text.partition(":")
    if not colon or not client_id:
        return None
    return unquote(client_id), unquote(secret)
