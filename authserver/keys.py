"""Signing keys: generation, encryption at rest, rotation and the published JWK Set.

Specifications:

* RFC 7517 (JSON Web Key) - the published key set (``jwks``) holds public members only.
  https://www.rfc-editor.org/rfc/rfc7517#section-5
* RFC 7638 (JWK Thumbprint) - every key's ``kid`` is its base64url SHA-256 thumbprint.
  https://www.rfc-editor.org/rfc/rfc7638#section-3

Private keys are stored encrypted with a key-encryption key (KEK, the
``AUTHSERVER_KEY_ENCRYPTION_KEY`` setting): AES-256-GCM, a 12-byte random nonce, a one-byte
format version, and the ``kid`` as associated data so that an encrypted key cannot be moved to
another row.

The algorithms, base64url and compact JWS (signing with a :class:`KeyRecord` through
:meth:`authserver.jose.Signer.from_record`, verification) are :mod:`authserver.jose`.

This module is pure: no Flask, no database. Time is always passed in (``now``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from authserver.jose import (
    CURVES_BY_CRV,
    PUBLIC_MEMBERS,
    AlgSpec,
    PrivateKey,
    PublicKey,
    UnsupportedKeyError,
    alg_spec,
    b64url_decode,
    b64url_encode,
    check_key_alg,
    int_to_b64,
)

__all__ = [
    "KEK_ENV_VAR",
    "RSA_KEY_SIZE",
    "KeyConfigError",
    "KeyRecord",
    "new_kek",
    "load_kek",
    "new_private_key",
    "generate_key",
    "encrypt_private",
    "decrypt_private",
    "jwk_thumbprint",
    "published",
    "active",
    "jwks",
]

KEK_ENV_VAR = "AUTHSERVER_KEY_ENCRYPTION_KEY"

RSA_KEY_SIZE = 2048
_RSA_PUBLIC_EXPONENT = 65537

_BLOB_VERSION = b"\x01"
_NONCE_LEN = 12
_GCM_TAG_LEN = 16
_KEK_LEN = 32

_META_MEMBERS = ("kid", "alg", "use")
# Members required for the RFC 7638 thumbprint, per key type.
_THUMBPRINT_MEMBERS: dict[str, tuple[str, ...]] = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
}


class KeyConfigError(ValueError):
    """Signing-key configuration problem (bad KEK, undecryptable key, unsupported algorithm)."""


# ---------------------------------------------------------------------------------------------
# KEK


def new_kek() -> str:
    """Return a fresh key-encryption key: 32 random bytes, base64url without padding."""
    return b64url_encode(os.urandom(_KEK_LEN))


def load_kek(text: str) -> bytes:
    """Parse a KEK produced by :func:`new_kek` (surrounding whitespace ignored).

    Raises :class:`KeyConfigError` (never echoing the value) if it is not exactly 32 bytes of
    unpadded base64url.
    """
    message = (
        f"{KEK_ENV_VAR} must be 32 random bytes encoded as base64url without padding "
        "(43 characters); generate one with authserver.keys.new_kek()"
    )
    if not isinstance(text, str):
        raise KeyConfigError(message)
    text = text.strip()
    if len(text) != 43:
        raise KeyConfigError(message)
    try:
        raw = b64url_decode(text)
    except ValueError:
        raise KeyConfigError(message) from None
    # Reject non-canonical encodings (stray low bits in the last character).
    if len(raw) != _KEK_LEN or b64url_encode(raw) != text:
        raise KeyConfigError(message)
    return raw


def _check_kek(kek: bytes) -> None:
    if not isinstance(kek, bytes | bytearray) or len(kek) != _KEK_LEN:
        raise KeyConfigError(f"{KEK_ENV_VAR} must decode to exactly 32 bytes (use load_kek)")


# ---------------------------------------------------------------------------------------------
# Records


@dataclass
class KeyRecord:
    """One signing key as stored: public JWK in clear, private key encrypted under the KEK."""

    kid: str
    alg: str
    public_jwk: dict[str, Any]
    private_blob: bytes = field(repr=False)
    created_at: datetime
    retired_at: datetime | None = None

    def __repr__(self) -> str:  # explicit, so the encrypted private key can never leak
        return (
            f"KeyRecord(kid={self.kid!r}, alg={self.alg!r}, created_at={self.created_at!r}, "
            f"retired_at={self.retired_at!r})"
        )

    def private_key(self, kek: bytes) -> PrivateKey:
        """The private key, decrypted with ``kek``; :class:`KeyConfigError` if it cannot be
        decrypted or does not fit ``alg`` (what :meth:`authserver.jose.Signer.from_record`
        opens)."""
        key = decrypt_private(self.private_blob, kek, self.kid)
        try:
            check_key_alg(key, self.alg)
        except UnsupportedKeyError as exc:
            raise KeyConfigError(str(exc)) from None
        return key


def _require_aware(now: datetime, name: str = "now") -> None:
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")


def _spec(alg: str) -> AlgSpec:
    try:
        return alg_spec(alg)
    except UnsupportedKeyError as exc:
        raise KeyConfigError(str(exc)) from None


def _public_members(public_key: PublicKey) -> dict[str, str]:
    if isinstance(public_key, rsa.RSAPublicKey):
        nums = public_key.public_numbers()
        return {"kty": "RSA", "n": int_to_b64(nums.n), "e": int_to_b64(nums.e)}
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        for crv, (curve_cls, size) in CURVES_BY_CRV.items():
            if isinstance(public_key.curve, curve_cls):
                nums = public_key.public_numbers()
                return {
                    "kty": "EC",
                    "crv": crv,
                    "x": int_to_b64(nums.x, size),
                    "y": int_to_b64(nums.y, size),
                }
    raise KeyConfigError("unsupported public key type")


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint of an RSA or EC JWK, base64url without padding."""
    members = _THUMBPRINT_MEMBERS.get(jwk.get("kty", ""))
    if members is None:
        raise KeyConfigError("thumbprint: unsupported kty")
    try:
        canonical = {name: jwk[name] for name in members}
    except KeyError:
        raise KeyConfigError("thumbprint: JWK is missing a required member") from None
    data = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return b64url_encode(hashlib.sha256(data.encode("utf-8")).digest())


def new_private_key(alg: str) -> PrivateKey:
    """A fresh private key for ``alg``: RSA 2048 bits (RS*), or on the algorithm's curve."""
    spec = _spec(alg)
    if spec.kty == "RSA":
        return rsa.generate_private_key(_RSA_PUBLIC_EXPONENT, RSA_KEY_SIZE)
    assert spec.curve is not None
    return ec.generate_private_key(spec.curve())


def generate_key(alg: str, kek: bytes, now: datetime) -> KeyRecord:
    """Create a new signing key for ``alg``; the private key is encrypted under ``kek``."""
    _spec(alg)
    _check_kek(kek)
    _require_aware(now)
    private_key = new_private_key(alg)
    members = _public_members(private_key.public_key())
    kid = jwk_thumbprint(members)
    public_jwk: dict[str, Any] = {**members, "kid": kid, "alg": alg, "use": "sig"}
    der = private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return KeyRecord(
        kid=kid,
        alg=alg,
        public_jwk=public_jwk,
        private_blob=encrypt_private(der, kek, kid),
        created_at=now,
    )


# ---------------------------------------------------------------------------------------------
# Encryption at rest


def _aad(kid: str) -> bytes:
    return _BLOB_VERSION + kid.encode("utf-8")


def encrypt_private(pem_or_der: bytes, kek: bytes, kid: str) -> bytes:
    """Encrypt a serialized private key: ``version(1) || nonce(12) || AES-256-GCM(ct || tag)``.

    The kid (and version byte) are authenticated as associated data.
    """
    _check_kek(kek)
    if not isinstance(pem_or_der, bytes | bytearray):
        raise TypeError("pem_or_der must be bytes")
    nonce = os.urandom(_NONCE_LEN)
    ciphertext = AESGCM(bytes(kek)).encrypt(nonce, bytes(pem_or_der), _aad(kid))
    return _BLOB_VERSION + nonce + ciphertext


def decrypt_private(blob: bytes, kek: bytes, kid: str) -> PrivateKey:
    """Decrypt a blob from :func:`encrypt_private` and load the private key object."""
    error = KeyConfigError(
        f"cannot decrypt signing key {kid}: wrong {KEK_ENV_VAR} or corrupted key"
    )
    _check_kek(kek)
    if (
        not isinstance(blob, bytes | bytearray | memoryview)
        or len(blob) < 1 + _NONCE_LEN + _GCM_TAG_LEN
        or bytes(blob[:1]) != _BLOB_VERSION
    ):
        raise error
    blob = bytes(blob)
    nonce, ciphertext = blob[1 : 1 + _NONCE_LEN], blob[1 + _NONCE_LEN :]
    try:
        plaintext = AESGCM(bytes(kek)).decrypt(nonce, ciphertext, _aad(kid))
    except InvalidTag:
        raise error from None
    try:
        if plaintext.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_private_key(plaintext, password=None)
        else:
            key = serialization.load_der_private_key(plaintext, password=None)
    except (ValueError, TypeError):
        raise error from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise KeyConfigError(f"signing key {kid} is neither an RSA nor an EC key")
    return key


# ---------------------------------------------------------------------------------------------
# Rotation and publishing


def _newest_first(records: Iterable[KeyRecord]) -> list[KeyRecord]:
    return sorted(records, key=lambda r: r.created_at, reverse=True)


def published(
    records: Iterable[KeyRecord], now: datetime, max_token_lifetime: timedelta
) -> list[KeyRecord]:
    """Keys to publish in the JWKS, newest first.

    All non-retired keys, plus retired keys still within ``max_token_lifetime`` of their
    retirement (a token signed just before retirement must validate until it expires).
    """
    _require_aware(now)
    return _newest_first(
        r for r in records if r.retired_at is None or r.retired_at + max_token_lifetime > now
    )


def active(records: Iterable[KeyRecord], alg: str | None = "RS256") -> KeyRecord | None:
    """The newest non-retired key for ``alg`` (any algorithm if ``alg`` is None), or None."""
    for record in _newest_first(records):
        if record.retired_at is None and (alg is None or record.alg == alg):
            return record
    return None


def _public_only(jwk: dict[str, Any]) -> dict[str, Any]:
    allowed = PUBLIC_MEMBERS.get(jwk.get("kty", ""), ()) + _META_MEMBERS
    return {name: jwk[name] for name in allowed if name in jwk}


def jwks(records: Iterable[KeyRecord]) -> dict[str, list[dict[str, Any]]]:
    """RFC 7517 JWK Set of the given records' public keys (private members never copied)."""
    return {"keys": [_public_only(r.public_jwk) for r in records]}
