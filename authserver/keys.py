"""Signing keys: generation, encryption at rest, rotation, JWKS publishing and compact JWS.

Specifications:

* RFC 7517 (JSON Web Key) - the published key set (``jwks``) holds public members only.
* RFC 7518 (JSON Web Algorithms) - RS256/RS384 (RSASSA-PKCS1-v1_5, section 3.3) and
  ES256/ES384 (ECDSA, section 3.4: the signature is the raw ``R || S`` pair, each a fixed
  length big-endian integer, *not* DER).
* RFC 7638 (JWK Thumbprint) - every key's ``kid`` is its base64url SHA-256 thumbprint.
* RFC 7515 (JSON Web Signature) - compact serialization, produced and checked here directly
  with ``cryptography``.

Private keys are stored encrypted with a key-encryption key (KEK, the
``AUTHSERVER_KEY_ENCRYPTION_KEY`` setting): AES-256-GCM, a 12-byte random nonce, a one-byte
format version, and the ``kid`` as associated data so that an encrypted key cannot be moved to
another row.

This module is pure: no Flask, no database. Time is always passed in (``now``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "SUPPORTED_ALGS",
    "KEK_ENV_VAR",
    "KeyConfigError",
    "TokenError",
    "KeyRecord",
    "new_kek",
    "load_kek",
    "generate_key",
    "encrypt_private",
    "decrypt_private",
    "jwk_thumbprint",
    "published",
    "active",
    "jwks",
    "Signer",
    "verify_compact",
    "raw_sign_rate",
]

SUPPORTED_ALGS: tuple[str, ...] = ("RS256", "RS384", "ES256", "ES384")
KEK_ENV_VAR = "AUTHSERVER_KEY_ENCRYPTION_KEY"

RSA_KEY_SIZE = 2048
_RSA_MIN_VERIFY_BITS = 2048
_RSA_PUBLIC_EXPONENT = 65537

_BLOB_VERSION = b"\x01"
_NONCE_LEN = 12
_GCM_TAG_LEN = 16
_KEK_LEN = 32

# Largest compact JWS accepted by verify_compact (bytes); guards against pathological input.
MAX_TOKEN_LENGTH = 64 * 1024

_B64URL_RE = re.compile(r"[A-Za-z0-9_-]*")

# The only members ever copied into a published JWK.
_PUBLIC_MEMBERS: dict[str, tuple[str, ...]] = {
    "RSA": ("kty", "n", "e"),
    "EC": ("kty", "crv", "x", "y"),
}
_META_MEMBERS = ("kid", "alg", "use")
# Members required for the RFC 7638 thumbprint, per key type.
_THUMBPRINT_MEMBERS: dict[str, tuple[str, ...]] = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
}


@dataclass(frozen=True)
class _AlgSpec:
    kty: str
    hash_cls: type[hashes.HashAlgorithm]
    curve: type[ec.EllipticCurve] | None = None
    crv: str | None = None
    coord_len: int = 0  # bytes per EC coordinate / signature half


_ALGS: dict[str, _AlgSpec] = {
    "RS256": _AlgSpec("RSA", hashes.SHA256),
    "RS384": _AlgSpec("RSA", hashes.SHA384),
    "ES256": _AlgSpec("EC", hashes.SHA256, ec.SECP256R1, "P-256", 32),
    "ES384": _AlgSpec("EC", hashes.SHA384, ec.SECP384R1, "P-384", 48),
}
_CURVES_BY_CRV: dict[str, tuple[type[ec.EllipticCurve], int]] = {
    "P-256": (ec.SECP256R1, 32),
    "P-384": (ec.SECP384R1, 48),
}

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


class KeyConfigError(ValueError):
    """Signing-key configuration problem (bad KEK, undecryptable key, unsupported algorithm)."""


class TokenError(ValueError):
    """A compact JWS failed to parse or verify. Messages never contain the token."""


# ---------------------------------------------------------------------------------------------
# base64url helpers


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    """Strict base64url without padding; raises ValueError on anything else."""
    if not isinstance(text, str) or not _B64URL_RE.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None


def _int_to_b64(value: int, length: int | None = None) -> str:
    if length is None:
        length = max(1, (value.bit_length() + 7) // 8)
    return _b64url_encode(value.to_bytes(length, "big"))


def _b64_to_int(text: str) -> int:
    return int.from_bytes(_b64url_decode(text), "big")


# ---------------------------------------------------------------------------------------------
# KEK


def new_kek() -> str:
    """Return a fresh key-encryption key: 32 random bytes, base64url without padding."""
    return _b64url_encode(os.urandom(_KEK_LEN))


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
        raw = _b64url_decode(text)
    except ValueError:
        raise KeyConfigError(message) from None
    # Reject non-canonical encodings (stray low bits in the last character).
    if len(raw) != _KEK_LEN or _b64url_encode(raw) != text:
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


def _require_aware(now: datetime, name: str = "now") -> None:
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")


def _spec(alg: str) -> _AlgSpec:
    try:
        return _ALGS[alg]
    except (KeyError, TypeError):
        raise KeyConfigError(
            f"unsupported signing algorithm {alg!r}; expected one of {', '.join(SUPPORTED_ALGS)}"
        ) from None


def _check_key_matches_alg(key: Any, alg: str) -> None:
    spec = _spec(alg)
    if spec.kty == "RSA":
        ok = isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey) and key.key_size >= 2048
    else:
        ok = isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) and (
            isinstance(key.curve, spec.curve)  # type: ignore[arg-type]
        )
    if not ok:
        raise KeyConfigError(f"key type does not match algorithm {alg}")


def _public_members(public_key: PublicKey) -> dict[str, str]:
    if isinstance(public_key, rsa.RSAPublicKey):
        nums = public_key.public_numbers()
        return {"kty": "RSA", "n": _int_to_b64(nums.n), "e": _int_to_b64(nums.e)}
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        for crv, (curve_cls, size) in _CURVES_BY_CRV.items():
            if isinstance(public_key.curve, curve_cls):
                nums = public_key.public_numbers()
                return {
                    "kty": "EC",
                    "crv": crv,
                    "x": _int_to_b64(nums.x, size),
                    "y": _int_to_b64(nums.y, size),
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
    return _b64url_encode(hashlib.sha256(data.encode("utf-8")).digest())


def generate_key(alg: str, kek: bytes, now: datetime) -> KeyRecord:
    """Create a new signing key for ``alg``; the private key is encrypted under ``kek``."""
    spec = _spec(alg)
    _check_kek(kek)
    _require_aware(now)
    private_key: PrivateKey
    if spec.kty == "RSA":
        private_key = rsa.generate_private_key(_RSA_PUBLIC_EXPONENT, RSA_KEY_SIZE)
    else:
        assert spec.curve is not None
        private_key = ec.generate_private_key(spec.curve())
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
    allowed = _PUBLIC_MEMBERS.get(jwk.get("kty", ""), ()) + _META_MEMBERS
    return {name: jwk[name] for name in allowed if name in jwk}


def jwks(records: Iterable[KeyRecord]) -> dict[str, list[dict[str, Any]]]:
    """RFC 7517 JWK Set of the given records' public keys (private members never copied)."""
    return {"keys": [_public_only(r.public_jwk) for r in records]}


# ---------------------------------------------------------------------------------------------
# Signing


def _json_b64(obj: dict[str, Any]) -> str:
    data = json.dumps(obj, separators=(",", ":"), allow_nan=False)
    return _b64url_encode(data.encode("utf-8"))


def _raw_sign(key: PrivateKey, spec: _AlgSpec, data: bytes) -> bytes:
    if spec.kty == "RSA":
        return key.sign(data, padding.PKCS1v15(), spec.hash_cls())  # type: ignore[call-arg]
    der = key.sign(data, ec.ECDSA(spec.hash_cls()))  # type: ignore[call-arg]
    r, s = decode_dss_signature(der)
    return r.to_bytes(spec.coord_len, "big") + s.to_bytes(spec.coord_len, "big")


class Signer:
    """Produces compact JWS with one private key. Build once per process, reuse."""

    __slots__ = ("kid", "alg", "_key", "_spec")

    _RESERVED_HEADERS = frozenset({"alg", "kid", "typ"})

    def __init__(self, private_key: PrivateKey, kid: str, alg: str) -> None:
        _check_key_matches_alg(private_key, alg)
        self.kid = kid
        self.alg = alg
        self._key = private_key
        self._spec = _ALGS[alg]

    @classmethod
    def from_record(cls, record: KeyRecord, kek: bytes) -> Signer:
        """Decrypt ``record``'s private key with ``kek``."""
        return cls(decrypt_private(record.private_blob, kek, record.kid), record.kid, record.alg)

    def __repr__(self) -> str:
        return f"Signer(kid={self.kid!r}, alg={self.alg!r})"

    def sign(
        self,
        claims: dict[str, Any],
        typ: str = "JWT",
        extra_headers: dict[str, Any] | None = None,
    ) -> str:
        """Serialize and sign ``claims``; the header carries ``alg``, ``kid`` and ``typ``."""
        header: dict[str, Any] = {"alg": self.alg, "kid": self.kid, "typ": typ}
        if extra_headers:
            clash = self._RESERVED_HEADERS.intersection(extra_headers)
            if clash:
                raise ValueError(f"extra_headers may not set {', '.join(sorted(clash))}")
            header.update(extra_headers)
        signing_input = f"{_json_b64(header)}.{_json_b64(claims)}"
        signature = _raw_sign(self._key, self._spec, signing_input.encode("ascii"))
        return f"{signing_input}.{_b64url_encode(signature)}"


# ---------------------------------------------------------------------------------------------
# Verification


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise ValueError("duplicate member")
        result[name] = value
    return result


def _reject_constant(_name: str) -> Any:
    raise ValueError("non-finite number")


def _decode_json_segment(segment: str, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(
            _b64url_decode(segment).decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_constant=_reject_constant,
        )
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise TokenError(f"malformed token {what}") from None
    if not isinstance(obj, dict):
        raise TokenError(f"malformed token {what}")
    return obj


@lru_cache(maxsize=256)
def _load_public_key(alg: str, members: tuple[tuple[str, str], ...]) -> PublicKey:
    spec = _ALGS[alg]
    jwk = dict(members)
    if spec.kty == "RSA":
        public_key = rsa.RSAPublicNumbers(_b64_to_int(jwk["e"]), _b64_to_int(jwk["n"])).public_key()
        if public_key.key_size < _RSA_MIN_VERIFY_BITS:
            raise ValueError("RSA key too small")
        return public_key
    curve_cls, size = _CURVES_BY_CRV[jwk["crv"]]
    x_bytes, y_bytes = _b64url_decode(jwk["x"]), _b64url_decode(jwk["y"])
    if len(x_bytes) != size or len(y_bytes) != size:
        raise ValueError("bad EC coordinate length")
    return ec.EllipticCurvePublicNumbers(
        int.from_bytes(x_bytes, "big"), int.from_bytes(y_bytes, "big"), curve_cls()
    ).public_key()


def _select_key(key_set: dict[str, Any], kid: str, alg: str) -> PublicKey:
    keys = key_set.get("keys") if isinstance(key_set, dict) else None
    if not isinstance(keys, list):
        raise TokenError("no usable key set")
    spec = _ALGS[alg]
    found_kid = False
    for jwk in keys:
        if not isinstance(jwk, dict) or jwk.get("kid") != kid:
            continue
        found_kid = True
        if jwk.get("kty") != spec.kty:
            continue
        if "alg" in jwk and jwk["alg"] != alg:
            continue
        if "use" in jwk and jwk["use"] != "sig":
            continue
        if spec.kty == "EC" and jwk.get("crv") != spec.crv:
            continue
        names = _PUBLIC_MEMBERS[spec.kty][1:]
        if not all(isinstance(jwk.get(name), str) for name in names):
            continue
        try:
            return _load_public_key(alg, tuple((name, jwk[name]) for name in names))
        except (ValueError, KeyError, TypeError):
            continue
    if found_kid:
        raise TokenError("key for kid is not usable with the token's alg")
    raise TokenError("unknown kid")


def verify_compact(
    token: str, jwks: dict[str, Any], algorithms: Iterable[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify a compact JWS signature against a JWK Set; return ``(header, claims)``.

    The key is chosen by the header's ``kid`` from ``jwks`` only (``jwk``, ``jku``, ``x5u`` and
    ``x5c`` headers are never used). ``alg`` must be in ``algorithms`` and in
    :data:`SUPPORTED_ALGS` (so never ``none`` or HS*). Tokens with a ``crit`` header are refused.

    Only the signature is checked: callers must validate ``exp``, ``aud``, ``iss`` etc.
    Raises :class:`TokenError` on any failure.
    """
    if isinstance(algorithms, str):
        algorithms = (algorithms,)
    allowed = set(algorithms).intersection(SUPPORTED_ALGS)
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            raise TokenError("malformed token") from None
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise TokenError("malformed token")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("malformed token: expected three segments")
    header_b64, payload_b64, signature_b64 = parts
    header = _decode_json_segment(header_b64, "header")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in allowed:
        raise TokenError("token alg is not allowed")
    if "crit" in header:
        raise TokenError("token has unsupported critical header parameters")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenError("token header has no kid")
    public_key = _select_key(jwks, kid, alg)
    try:
        signature = _b64url_decode(signature_b64)
    except ValueError:
        raise TokenError("malformed token signature") from None
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    spec = _ALGS[alg]
    try:
        if spec.kty == "RSA":
            public_key.verify(  # type: ignore[call-arg]
                signature, signing_input, padding.PKCS1v15(), spec.hash_cls()
            )
        else:
            if len(signature) != 2 * spec.coord_len:
                raise InvalidSignature
            r = int.from_bytes(signature[: spec.coord_len], "big")
            s = int.from_bytes(signature[spec.coord_len :], "big")
            public_key.verify(  # type: ignore[call-arg]
                encode_dss_signature(r, s), signing_input, ec.ECDSA(spec.hash_cls())
            )
    except InvalidSignature:
        raise TokenError("invalid token signature") from None
    claims = _decode_json_segment(payload_b64, "payload")
    return header, claims


# ---------------------------------------------------------------------------------------------
# Benchmark helper


def raw_sign_rate(alg: str, seconds: float = 1.0) -> float:
    """Signatures per second of the bare ``cryptography`` sign over a ~300-byte message."""
    spec = _spec(alg)
    key: PrivateKey
    if spec.kty == "RSA":
        key = rsa.generate_private_key(_RSA_PUBLIC_EXPONENT, RSA_KEY_SIZE)
    else:
        assert spec.curve is not None
        key = ec.generate_private_key(spec.curve())
    # 225 random bytes -> 300 base64url characters, the size of a typical JWS signing input.
    message = _b64url_encode(os.urandom(225)).encode("ascii")
    sign = _make_bare_signer(key, spec)
    sign(message)  # warm up
    count = 0
    start = time.perf_counter()
    while True:
        sign(message)
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return count / elapsed


def _make_bare_signer(key: PrivateKey, spec: _AlgSpec) -> Callable[[bytes], bytes]:
    if spec.kty == "RSA":
        pad, hash_obj = padding.PKCS1v15(), spec.hash_cls()

        def sign_rsa(data: bytes) -> bytes:
            return key.sign(data, pad, hash_obj)  # type: ignore[call-arg]

        return sign_rsa
    sig_alg = ec.ECDSA(spec.hash_cls())

    def sign_ec(data: bytes) -> bytes:
        return key.sign(data, sig_alg)  # type: ignore[call-arg]

    return sign_ec
