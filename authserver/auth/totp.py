"""Time-based one-time passwords (RFC 6238 TOTP over RFC 4226 HOTP), via pyotp.

Parameters are the authenticator-app defaults: HMAC-SHA1, 30-second steps, 6 digits, a 160-bit
secret (RFC 4226 section 4 recommends 160 bits). A code is accepted for the current step and
one step either side (clock drift, RFC 6238 section 5.2), compared in constant time, and only
once: the caller stores the returned step and passes it back as ``last_step``.

Pure module: time is passed in (``now``), never read.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from datetime import datetime

import pyotp
import segno

__all__ = [
    "DIGITS",
    "STEP_SECONDS",
    "WINDOW",
    "new_secret",
    "provisioning_uri",
    "time_step",
    "verify",
    "qr_svg",
]

DIGITS = 6
STEP_SECONDS = 30
WINDOW = 1  # steps accepted either side of the current one
_SECRET_BYTES = 20  # 160 bits
_MIN_SECRET_BYTES = 16  # RFC 4226 section 4, R6: at least 128 bits

_CODE_RE = re.compile(rf"[0-9]{{{DIGITS}}}")


def new_secret() -> str:
    """A fresh random 160-bit secret, base32 without padding (32 characters)."""
    return pyotp.random_base32(length=_SECRET_BYTES * 8 // 5)


def _totp(secret: str) -> pyotp.TOTP:
    if not isinstance(secret, str):
        raise ValueError("TOTP secret must be a base32 string")
    cleaned = secret.replace(" ", "").upper()
    try:
        raw = base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    except (binascii.Error, ValueError):
        raise ValueError("TOTP secret is not valid base32") from None
    if len(raw) < _MIN_SECRET_BYTES:
        raise ValueError("TOTP secret is shorter than 128 bits")
    return pyotp.TOTP(cleaned, digits=DIGITS, interval=STEP_SECONDS)


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """``otpauth://totp/...`` key URI for authenticator apps (label ``issuer:account``)."""
    if not account or not issuer:
        raise ValueError("account and issuer must be non-empty")
    if ":" in account or ":" in issuer:
        raise ValueError("account and issuer may not contain ':'")
    return _totp(secret).provisioning_uri(name=account, issuer_name=issuer)


def time_step(now: datetime) -> int:
    """The RFC 6238 time-step counter ``T`` for ``now`` (a timezone-aware datetime)."""
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    return int(now.timestamp()) // STEP_SECONDS


def verify(secret: str, code: str, now: datetime, last_step: int | None) -> int | None:
    """Check ``code``; return the matched time step, or None.

    None when the code is malformed (not exactly 6 ASCII digits once whitespace is removed),
    wrong, or matches only steps ``<= last_step`` (already used: replay refused). Accepted steps
    are ``T-1``, ``T`` and ``T+1``. Raises ValueError only for a bad secret or naive ``now``.
    """
    totp = _totp(secret)
    current = time_step(now)
    if not isinstance(code, str):
        return None
    candidate = "".join(code.split())
    if not _CODE_RE.fullmatch(candidate):
        return None
    matched: int | None = None
    # Every candidate step is computed and compared, so timing does not reveal which matched.
    for step in range(current - WINDOW, current + WINDOW + 1):
        expected = totp.generate_otp(step)
        ok = hmac.compare_digest(expected.encode("ascii"), candidate.encode("ascii"))
        fresh = last_step is None or step > last_step
        if ok and fresh and matched is None:
            matched = step
    return matched


def qr_svg(uri: str) -> str:
    """Inline SVG (no XML declaration) of ``uri`` as a QR code, for embedding in HTML."""
    qr = segno.make_qr(uri, error="m")
    # Explicit white background so the code stays scannable on dark page themes.
    return qr.svg_inline(
        scale=5, dark="#000", light="#fff", title="QR code for your authenticator app"
    )
