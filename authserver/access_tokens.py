"""Reading a JWT access token around its signature: the key it names and RFC 9068 §4's checks.

https://www.rfc-editor.org/rfc/rfc9068#section-4 (what a reader checks) and
https://www.rfc-editor.org/rfc/rfc9068#section-2.2 (the claims a token carries).

The one home of these rules for both readers of our access tokens: the authorization server
(:mod:`authserver.oauth.rfc9068`, which only asks "is this one of ours, live?") and the resource
kit (:mod:`authserver.resource.validator`, which tells a FHIR server why it refuses a token and
accepts other issuers' shapes, e.g. fractional times). Where the two differ, the difference is
a keyword of :func:`check_access_token_claims`, not a second copy. Decoding the unverified
header (:func:`authserver.jose.unverified_header`) and checking the signature
(:func:`authserver.jose.verify_compact`) are the JOSE module's.

Pure: the standard library only (no Flask, no database); the caller gives the time.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

__all__ = [
    "ACCESS_TOKEN_TYPES", "MAX_KID_LENGTH", "REQUIRED_STRINGS", "AccessTokenRejected",
    "check_access_token_claims", "key_id",
]

#: RFC 9068 §4: the only ``typ`` header values accepted (compared ignoring case: media types
#: are case insensitive, RFC 7515 §4.1.9, and RFC 9068's own example says ``at+JWT``).
ACCESS_TOKEN_TYPES = ("at+jwt", "application/at+jwt")
#: Longest ``kid`` looked up in a key set before the signature is checked.
MAX_KID_LENGTH = 128
#: The string claims a token must carry, in the order checked, with the longest each may be
#: (None: no bound). RFC 9068 §2.2: "sub REQUIRED", "client_id REQUIRED".
REQUIRED_STRINGS: tuple[tuple[str, int | None], ...] = (("sub", None), ("client_id", None))


class AccessTokenRejected(ValueError):
    """Not an acceptable access token. The message names the failed check in words a resource
    server may send back (RFC 6750 §3 ``error_description``); it never contains the token."""


def key_id(header: Mapping[str, Any]) -> str | None:
    """The ``kid`` an (unverified) header names, if it is a string of 1 to
    :data:`MAX_KID_LENGTH` characters; None otherwise (then no key set is consulted)."""
    kid = header.get("kid")
    return kid if isinstance(kid, str) and 0 < len(kid) <= MAX_KID_LENGTH else None


def check_access_token_claims(
    header: Mapping[str, Any], claims: Mapping[str, Any], *, issuer: str, now: float,
    audiences: Collection[str] | None = None, leeway: float = 0,
    integer_times: bool = False, check_not_before: bool = True,
    strings: Sequence[tuple[str, int | None]] = REQUIRED_STRINGS,
) -> None:
    """Raise :class:`AccessTokenRejected` unless the verified ``header`` and ``claims`` make an
    access token issued by ``issuer`` and live at ``now`` (seconds since the epoch).

    Checked in this order, the first failure giving the message: ``typ``; ``iss``; ``aud``
    (only when ``audiences`` is given: one of them, trailing ``/`` ignored); ``exp`` after
    ``now - leeway``; with ``check_not_before``, ``nbf`` (if present) and ``iat`` not after
    ``now + leeway``; ``iat`` present; then each of ``strings`` a non-empty string within its
    bound. ``integer_times`` requires ``exp``/``nbf``/``iat`` to be integers (else any JSON
    number). The authorization server passes ``integer_times=True, check_not_before=False``
    and its own bounded ``strings``; the resource kit the defaults, its audiences and leeway.
    """
    _check_type(header)
    # RFC 9068 §4: "The issuer identifier for the authorization server (which is typically
    # obtained during discovery) MUST exactly match the value of the "iss" claim."
    if claims.get("iss") != issuer:
        raise AccessTokenRejected("The token was issued by another server")
    if audiences is not None:
        _check_audience(claims, audiences)
    _check_times(claims, now, leeway, (int,) if integer_times else (int, float), check_not_before)
    _check_strings(claims, strings)


def _check_type(header: Mapping[str, Any]) -> None:
    typ = header.get("typ")
    # RFC 9068 §4: "The resource server MUST verify that the "typ" header value is "at+jwt" or
    # "application/at+jwt" and reject tokens carrying any other value." (An id_token is "JWT".)
    if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
        raise AccessTokenRejected("The token is not an access token")


def _check_audience(claims: Mapping[str, Any], audiences: Collection[str]) -> None:
    expected = {a.rstrip("/") for a in audiences}
    aud = claims.get("aud")
    auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    # RFC 9068 §4: "The resource server MUST validate that the "aud" claim contains a resource
    # indicator value corresponding to an identifier the resource server expects for itself.
    # The JWT access token MUST be rejected if "aud" does not contain a resource indicator of
    # the current resource server as a valid audience."
    if not any(isinstance(a, str) and a.rstrip("/") in expected for a in auds):
        raise AccessTokenRejected("The token is for another server")


def _is_time(value: Any, types: tuple[type, ...]) -> bool:
    return isinstance(value, types) and not isinstance(value, bool)


def _check_times(claims: Mapping[str, Any], now: float, leeway: float,
                 types: tuple[type, ...], check_not_before: bool) -> None:
    exp = claims.get("exp")
    # RFC 9068 §4: "The current time MUST be before the time represented by the "exp" claim.
    # Implementers MAY provide for some small leeway, usually no more than a few minutes, to
    # account for clock skew."
    if not _is_time(exp, types) or exp <= now - leeway:
        raise AccessTokenRejected("The token has expired")
    if check_not_before:
        nbf = claims.get("nbf")
        if nbf is not None and (not _is_time(nbf, types) or nbf > now + leeway):
            raise AccessTokenRejected("The token is not valid yet")
    iat = claims.get("iat")
    # RFC 9068 §2.2: "iat REQUIRED"; with check_not_before, not issued in the future either.
    if not _is_time(iat, types) or (check_not_before and iat > now + leeway):
        raise AccessTokenRejected("The token has no valid 'iat'")


def _check_strings(claims: Mapping[str, Any], strings: Sequence[tuple[str, int | None]]) -> None:
    for name, longest in strings:
        value = claims.get(name)
        if not isinstance(value, str) or not value:
            raise AccessTokenRejected(f"The token has no '{name}'")
        if longest is not None and len(value) > longest:
            raise AccessTokenRejected(f"The token's '{name}' is too long")
