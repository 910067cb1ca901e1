"""Reading our own access tokens: RFC 9068 JWTs that are never stored.

https://www.rfc-editor.org/rfc/rfc9068. One is *active* when its signature verifies against
our published keys (cached per app, re-read on an unknown ``kid``), its claims are ours and
unexpired, and one indexed lookup finds neither its ``jti`` revoked nor its grant revoked
(:func:`store.authorization.live_access_token`). Revocation is a database row, so it is seen
at once by every worker and every instance sharing the database.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from flask import current_app

from authserver import clock, jose, store
from authserver.oauth import keystore

__all__ = ["PUBLIC_KEYS_TTL", "AccessTokenInfo", "PublicKeys", "has_scope",
           "read_access_token", "verified_claims"]

#: Seconds a process uses the public keys it loaded before reading them again (a key made by
#: ``authserver keys rotate`` is picked up sooner: an unknown ``kid`` re-reads at once).
PUBLIC_KEYS_TTL = 30.0
#: Longest token string examined; anything longer is not one of ours.
MAX_TOKEN_LENGTH = 8192
#: RFC 9068 §2.1: access tokens carry ``typ: at+jwt`` (``application/at+jwt`` also allowed).
ACCESS_TOKEN_TYPES = ("at+jwt", "application/at+jwt")


class PublicKeys:
    """The app's cache of its own JWKS (``(jwks, kids, loaded at)``), in ``app.extensions``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.hit: tuple[dict[str, Any], frozenset[str], float] | None = None


@dataclass(frozen=True)
class AccessTokenInfo:
    """A verified, live access token of ours: its claims and (when it has one) its grant."""

    claims: dict[str, Any]
    grant: store.authorization.LiveGrant | None

    @property
    def scopes(self) -> list[str]:
        return self.claims["scope"].split()


def _header_kid(token: str) -> str | None:
    segment = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        return None
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) and 0 < len(kid) <= 128 else None


def _public_keys_for(kid: str) -> dict[str, Any]:
    """Our JWKS, cached per process; re-read when stale or when ``kid`` is not in it."""
    cache: PublicKeys = current_app.extensions["authserver.public_keys"]
    t = time.monotonic()
    hit = cache.hit
    if hit is not None and t - hit[2] < PUBLIC_KEYS_TTL and kid in hit[1]:
        return hit[0]
    with cache.lock:
        jwks = keystore.public_jwks()
        kids = frozenset(k.get("kid") for k in jwks.get("keys", []) if isinstance(k, dict))
        cache.hit = (jwks, kids, t)
    return jwks


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _claims_are_ours(header: dict[str, Any], claims: dict[str, Any]) -> bool:
    typ = header.get("typ")
    # RFC 9068 §4: resource servers "MUST verify that the typ header value is at+jwt or
    # application/at+jwt and reject tokens carrying any other value" (an id_token is "JWT").
    if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
        return False
    if claims.get("iss") != current_app.config["ISSUER"]:
        return False
    if not (_is_int(claims.get("exp")) and _is_int(claims.get("iat"))):
        return False
    if claims["exp"] <= clock.now():
        return False
    for name in ("jti", "client_id", "sub"):
        value = claims.get(name)
        if not isinstance(value, str) or not value or len(value) > 255:
            return False
    if len(claims["jti"]) > 64 or not isinstance(claims.get("scope"), str):
        return False
    gid = claims.get("gid")
    return gid is None or (isinstance(gid, str) and 0 < len(gid) <= 64)


def verified_claims(token: Any) -> dict[str, Any] | None:
    """Claims of a token we signed that has not expired; None for anything else.
    No database lookup except (rarely) re-reading our public keys."""
    if not isinstance(token, str) or token.count(".") != 2 or len(token) > MAX_TOKEN_LENGTH:
        return None
    kid = _header_kid(token)
    if kid is None:
        return None
    try:
        header, claims = jose.verify_compact(token, _public_keys_for(kid), jose.SUPPORTED_ALGS)
    except jose.TokenError:
        return None
    return claims if _claims_are_ours(header, claims) else None


def read_access_token(token: Any) -> AccessTokenInfo | None:
    """Our access token if it is active now, else None (expired, revoked, malformed, forged,
    an id_token, unknown). Local signature check, then one indexed lookup."""
    claims = verified_claims(token)
    if claims is None:
        return None
    live, grant = store.authorization.live_access_token(claims["jti"], claims.get("gid"),
                                            claims["client_id"])
    return AccessTokenInfo(claims, grant) if live else None


def has_scope(info: AccessTokenInfo, scope: str) -> bool:
    return scope in info.scopes
