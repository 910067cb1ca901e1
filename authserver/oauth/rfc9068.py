"""Reading our own access tokens: RFC 9068 JWTs that are never stored.

https://www.rfc-editor.org/rfc/rfc9068. One is *active* when its signature verifies against
our published keys (cached per app, re-read on an unknown ``kid``), its claims are ours and
unexpired, and one indexed lookup finds neither its ``jti`` revoked nor its grant revoked
(:func:`store.authorization.live_access_token`). Revocation is a database row, so it is seen
at once by every worker and every instance sharing the database.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from flask import current_app

from authserver import access_tokens, clock, jose, store
from authserver.oauth import keystore

__all__ = ["PUBLIC_KEYS_TTL", "AccessTokenInfo", "PublicKeys", "has_scope",
           "read_access_token", "verified_claims"]

#: Seconds a process uses the public keys it loaded before reading them again (a key made by
#: ``authserver keys rotate`` is picked up sooner: an unknown ``kid`` re-reads at once).
PUBLIC_KEYS_TTL = 30.0
#: Longest token string examined; anything longer is not one of ours.
MAX_TOKEN_LENGTH = 8192
#: Our tokens' RFC 9068 §2.2 string claims with the longest each may be (what the store
#: indexes): stricter than a resource server's :data:`access_tokens.REQUIRED_STRINGS`.
OUR_STRING_CLAIMS = (("jti", 64), ("client_id", 255), ("sub", 255))


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


def _claims_are_ours(header: dict[str, Any], claims: dict[str, Any]) -> bool:
    """RFC 9068 §4 (:func:`access_tokens.check_access_token_claims`) as we issue tokens:
    our issuer, integer times, no leeway on ``exp``, no ``aud`` (ours name the FHIR server),
    ``iat`` and ``nbf`` not compared with the clock; then what only our tokens carry."""
    try:
        access_tokens.check_access_token_claims(
            header, claims, issuer=current_app.config["ISSUER"], now=clock.now(),
            integer_times=True, check_not_before=False, strings=OUR_STRING_CLAIMS)
    except access_tokens.AccessTokenRejected:
        return False
    # Not RFC 9068 §4, and not read by the resource kit: ``scope`` always present as a string
    # (possibly empty), ``gid`` (the grant a token came from) absent or a short string.
    gid = claims.get("gid")
    return isinstance(claims.get("scope"), str) and (
        gid is None or (isinstance(gid, str) and 0 < len(gid) <= 64))


def verified_claims(token: Any) -> dict[str, Any] | None:
    """Claims of a token we signed that has not expired; None for anything else.
    No database lookup except (rarely) re-reading our public keys."""
    if not isinstance(token, str) or token.count(".") != 2 or len(token) > MAX_TOKEN_LENGTH:
        return None
    header = jose.unverified_header(token)
    kid = None if header is None else access_tokens.key_id(header)
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
