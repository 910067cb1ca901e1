"""The one JOSE module: base64url, the algorithms, compact JWS signing and verification.

Specifications:

* RFC 7515 (JSON Web Signature) - compact serialization, produced (:class:`Signer`) and
  checked (:func:`verify_compact`) here directly with ``cryptography``; the header read
  unverified, to choose the key (:func:`unverified_header`).
  https://www.rfc-editor.org/rfc/rfc7515#section-7.1
* RFC 7518 (JSON Web Algorithms) - RS256/RS384 (RSASSA-PKCS1-v1_5, section 3.3) and
  ES256/ES384 (ECDSA, section 3.4: the signature is the raw ``R || S`` pair, each a fixed
  length big-endian integer, *not* DER).
  https://www.rfc-editor.org/rfc/rfc7518#section-3
* RFC 7517 (JSON Web Key) - the public members of the RSA and EC keys read from a JWK Set.
  https://www.rfc-editor.org/rfc/rfc7517#section-4

Key management (generation, the key-encryption key, rotation, the published JWKS) is
:mod:`authserver.keys`, which builds on this module; this one knows nothing of it.

This module is pure: no Flask, no database.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

__all__ = [
    "SUPPORTED_ALGS", "MAX_TOKEN_LENGTH", "ALGS", "CURVES_BY_CRV",
    "PUBLIC_MEMBERS", "AlgSpec", "PrivateKey", "PublicKey", "SealedKey", "TokenError",
    "UnsupportedKeyError", "b64url_encode", "b64url_decode", "int_to_b64", "alg_spec",
    "check_key_alg", "Signer", "unverified_header", "verify_compact",
]

SUPPORTED_ALGS: tuple[str, ...] = ("RS256", "RS384", "ES256", "ES384")

_RSA_MIN_VERIFY_BITS = 2048

# Largest compact JWS accepted by verify_compact (bytes); guards against pathological input.
MAX_TOKEN_LENGTH = 64 * 1024

_B64URL_RE = re.compile(r"[A-Za-z0-9_-]*")

#: The public members of a JWK, per key type (the only ones ever published or read).
PUBLIC_MEMBERS: dict[str, tuple[str, ...]] = {
    "RSA": ("kty", "n", "e"),
    "EC": ("kty", "crv", "x", "y"),
}


@dataclass(frozen=True)
class AlgSpec:
    """What one ``alg`` means: its key type, hash and (for ECDSA) curve and sizes."""

    kty: str
    hash_cls: type[hashes.HashAlgorithm]
    curve: type[ec.EllipticCurve] | None = None
    crv: str | None = None
    coord_len: int = 0  # bytes per EC coordinate / signature half


ALGS: dict[str, AlgSpec] = {
    "RS256": AlgSpec("RSA", hashes.SHA256),
    "RS384": AlgSpec("RSA", hashes.SHA384),
    "ES256": AlgSpec("EC", hashes.SHA256, ec.SECP256R1, "P-256", 32),
    "ES384": AlgSpec("EC", hashes.SHA384, ec.SECP384R1, "P-384", 48),
}
#: The EC curves by JWK ``crv``: (curve, bytes per coordinate).
CURVES_BY_CRV: dict[str, tuple[type[ec.EllipticCurve], int]] = {
    "P-256": (ec.SECP256R1, 32),
    "P-384": (ec.SECP384R1, 48),
}

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


class UnsupportedKeyError(ValueError):
    """An algorithm outside :data:`SUPPORTED_ALGS`, or a key that does not fit its algorithm."""


class TokenError(ValueError):
    """A compact JWS failed to parse or verify. Messages never contain the token."""


# ---------------------------------------------------------------------------------------------
# base64url (RFC 7515 section 2: no padding)


def b64url_encode(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict base64url without padding; raises ValueError on anything else."""
    if not isinstance(text, str) or not _B64URL_RE.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None


def int_to_b64(value: int, length: int | None = None) -> str:
    """A JWK integer member: big-endian, ``length`` bytes (else as few as possible)."""
    if length is None:
        length = max(1, (value.bit_length() + 7) // 8)
    return b64url_encode(value.to_bytes(length, "big"))


def _b64_to_int(text: str) -> int:
    return int.from_bytes(b64url_decode(text), "big")


# ---------------------------------------------------------------------------------------------
# Algorithms and keys


def alg_spec(alg: str) -> AlgSpec:
    """The :class:`AlgSpec` of a supported ``alg``; :class:`UnsupportedKeyError` otherwise."""
    try:
        return ALGS[alg]
    except (KeyError, TypeError):
        raise UnsupportedKeyError(
            f"unsupported signing algorithm {alg!r}; expected one of {', '.join(SUPPORTED_ALGS)}"
        ) from None


def check_key_alg(key: Any, alg: str) -> AlgSpec:
    """The spec of ``alg`` if ``key`` (private or public) can be used with it: an RSA key of
    at least 2048 bits for RS*, a key on the algorithm's curve for ES*. Raises
    :class:`UnsupportedKeyError` otherwise."""
    spec = alg_spec(alg)
    if spec.kty == "RSA":
        ok = isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey) and key.key_size >= 2048
    else:
        ok = isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) and (
            isinstance(key.curve, spec.curve)  # type: ignore[arg-type]
        )
    if not ok:
        raise UnsupportedKeyError(f"key type does not match algorithm {alg}")
    return spec


# ---------------------------------------------------------------------------------------------
# Signing


class SealedKey(Protocol):
    """A stored signing key that can open its private key (:class:`authserver.keys.KeyRecord`)."""

    kid: str
    alg: str

    def private_key(self, kek: bytes) -> PrivateKey: ...


def _json_b64(obj: dict[str, Any]) -> str:
    data = json.dumps(obj, separators=(",", ":"), allow_nan=False)
    return b64url_encode(data.encode("utf-8"))


def _raw_sign(key: PrivateKey, spec: AlgSpec, data: bytes) -> bytes:
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
        self._spec = check_key_alg(private_key, alg)
        self.kid = kid
        self.alg = alg
        self._key = private_key

    @classmethod
    def from_record(cls, record: SealedKey, kek: bytes) -> Signer:
        """Open ``record``'s private key with ``kek``."""
        return cls(record.private_key(kek), record.kid, record.alg)

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
        return f"{signing_input}.{b64url_encode(signature)}"


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
            b64url_decode(segment).decode("utf-8"),
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
    spec = ALGS[alg]
    jwk = dict(members)
    if spec.kty == "RSA":
        public_key = rsa.RSAPublicNumbers(_b64_to_int(jwk["e"]), _b64_to_int(jwk["n"])).public_key()
        if public_key.key_size < _RSA_MIN_VERIFY_BITS:
            raise ValueError("RSA key too small")
        return public_key
    curve_cls, size = CURVES_BY_CRV[jwk["crv"]]
    x_bytes, y_bytes = b64url_decode(jwk["x"]), b64url_decode(jwk["y"])
    if len(x_bytes) != size or len(y_bytes) != size:
        raise ValueError("bad EC coordinate length")
    return ec.EllipticCurvePublicNumbers(
        int.from_bytes(x_bytes, "big"), int.from_bytes(y_bytes, "big"), curve_cls()
    ).public_key()


def _select_key(key_set: dict[str, Any], kid: str, alg: str) -> PublicKey:
    keys = key_set.get("keys") if isinstance(key_set, dict) else None
    if not isinstance(keys, list):
        raise TokenError("no usable key set")
    spec = ALGS[alg]
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
        names = PUBLIC_MEMBERS[spec.kty][1:]
        if not all(isinstance(jwk.get(name), str) for name in names):
            continue
        try:
            return _load_public_key(alg, tuple((name, jwk[name]) for name in names))
        except (ValueError, KeyError, TypeError):
            continue
    if found_kid:
        raise TokenError("key for kid is not usable with the token's alg")
    raise TokenError("unknown kid")


def _allowed_algs(algorithms: Iterable[str]) -> set[str]:
    """The caller's algorithms (one name or several) that this module supports."""
    if isinstance(algorithms, str):
        algorithms = (algorithms,)
    return set(algorithms).intersection(SUPPORTED_ALGS)


def _segments(token: str | bytes) -> list[str]:
    """The three segments of a compact JWS of at most MAX_TOKEN_LENGTH characters."""
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            raise TokenError("malformed token") from None
    # RFC 7515 §7.1: a compact JWS is base64url segments and dots: ASCII only (a non-ASCII
    # segment would otherwise fail later, outside TokenError, as a 500).
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        raise TokenError("malformed token")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("malformed token: expected three segments")
    return parts


def _check_header(header: dict[str, Any], allowed: set[str]) -> tuple[str, str]:
    """``(alg, kid)`` of a header with an allowed ``alg``, no ``crit`` and a ``kid``."""
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in allowed:
        raise TokenError("token alg is not allowed")
    if "crit" in header:
        raise TokenError("token has unsupported critical header parameters")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenError("token header has no kid")
    return alg, kid


def _check_signature(public_key: PublicKey, alg: str, signed: str, signature_b64: str) -> None:
    """RFC 7518 section 3.3 (RSASSA-PKCS1-v1_5) or 3.4 (ECDSA, raw ``R || S``) over the
    ``signed`` segments."""
    try:
        signature = b64url_decode(signature_b64)
    except ValueError:
        raise TokenError("malformed token signature") from None
    signing_input = signed.encode("ascii")
    spec = ALGS[alg]
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


def unverified_header(token: str) -> dict[str, Any] | None:
    """The JOSE header of a compact JWS, read *before* anything is verified (to choose the key
    by ``kid``); None unless the first segment is base64url of a JSON object. Lenient on
    purpose (padding and stray characters are skipped, duplicate members allowed): it trusts
    nothing, and :func:`verify_compact` then refuses whatever it let through."""
    segment = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        return None
    return header if isinstance(header, dict) else None


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
    allowed = _allowed_algs(algorithms)
    header_b64, payload_b64, signature_b64 = _segments(token)
    header = _decode_json_segment(header_b64, "header")
    alg, kid = _check_header(header, allowed)
    public_key = _select_key(jwks, kid, alg)
    _check_signature(public_key, alg, f"{header_b64}.{payload_b64}", signature_b64)
    claims = _decode_json_segment(payload_b64, "payload")
    return header, claims
