"""Token issuance, the one place: RFC 9068 JWT access tokens with SMART claims, refresh tokens.

- RFC 9068 §2 (https://www.rfc-editor.org/rfc/rfc9068#section-2): header ``typ: at+jwt``;
  claims iss, exp, aud, sub, client_id, iat, jti (+ scope and SMART context).
- The id_token is added by the OpenID Connect grant extension (:mod:`authserver.oauth.oidc`).
- SMART App Launch 2.2: token response carries scope, expires_in and launch context.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from flask import current_app

from authserver import clock, digests, store
from authserver.oauth import keystore
from authserver.smart.grammar import parse_scopes
from authserver.smart.launch import token_context

if TYPE_CHECKING:
    from authserver.models import Client, Grant, User

__all__ = ["issue_tokens", "issue_client_credentials_token", "access_token_claims",
           "fhir_user_url"]


def fhir_user_url(user: User | None, aud: str) -> str | None:
    """SMART: fhirUser is an absolute (or base-relative) URL of the user's resource."""
    if user is None or not user.fhir_user:
        return None
    return f"{aud.rstrip('/')}/{user.fhir_user}"


def access_token_claims(
    *, client_id: str, sub: str, aud: str, scope: str, lifetime: int, grant_id: str | None,
    context: dict[str, Any], fhir_user: str | None,
) -> dict[str, Any]:
    t = clock.now()
    claims: dict[str, Any] = {
        "iss": current_app.config["ISSUER"],
        "sub": sub,
        "aud": aud,
        "exp": t + lifetime,
        "iat": t,
        "jti": uuid.uuid4().hex,
        "client_id": client_id,
        "scope": scope,
    }
    if grant_id:
        claims["gid"] = grant_id  # private claim: the grant, for revocation checks
    for key in ("patient", "encounter"):
        if context.get(key):
            claims[key] = context[key]
    if fhir_user:
        claims["fhirUser"] = fhir_user
    return claims


def _access_fhir_user(parsed: list[Any], user: User | None, aud: str) -> str | None:
    """``fhirUser`` of an access token: under the ``fhirUser`` scope, and always with a
    ``user/`` scope, which reaches "what the user may see": the resource server needs to
    know who that is (the ceiling grants user/ scopes only to accounts that have one)."""
    if any(s.kind == "fhirUser" or (s.resource is not None and s.resource.context == "user")
           for s in parsed):
        return fhir_user_url(user, aud)
    return None


def issue_tokens(
    *, client: Client, grant: Grant, scope: str, user: User | None,
    include_refresh: bool, refresh_expires_at: int | None = None,
    lifetime: int | None = None, refresh_scope: str | None = None,
) -> dict[str, Any]:
    """Sign an access token (and a refresh token where granted) for ``grant``.

    ``refresh_scope`` is the new refresh token's scope when it differs from ``scope`` (a
    refresh that narrowed the access token). Adds the refresh token row to the session;
    the caller commits (and runs the grant's ``process_token`` hooks: the id_token).
    """
    lifetime = lifetime or current_app.config["ACCESS_TOKEN_LIFETIME"]
    claims = access_token_claims(
        client_id=client.client_id, sub=str(user.id) if user else client.client_id,
        aud=grant.aud, scope=scope, lifetime=lifetime, grant_id=grant.id,
        context=grant.context or {},
        fhir_user=_access_fhir_user(parse_scopes(scope), user, grant.aud))
    token: dict[str, Any] = {
        "access_token": keystore.get_signer().sign(claims, typ="at+jwt"),
        "token_type": "Bearer",
        "expires_in": lifetime,
        "scope": scope,
    }
    token.update(token_context(grant.context or {}, scope.split()))
    expires_at = claims["exp"]
    if include_refresh and refresh_expires_at:
        refresh = digests.new_secret(32)
        store.authorization.save_refresh_token(refresh, grant, refresh_scope or scope,
                                               refresh_expires_at)
        token["refresh_token"] = refresh
        expires_at = max(expires_at, refresh_expires_at)
    store.authorization.touch_grant(grant, expires_at)
    return token


def issue_client_credentials_token(*, client_id: str, scope: str, aud: str,
                                   lifetime: int | None = None) -> dict[str, Any]:
    """Sign a Backend Services access token: ``sub`` = ``client_id``, no refresh token.

    Nothing is written to the database (this is the token endpoint's hot path): the token
    has no grant (no ``gid`` claim), so it is revoked on its own by ``jti``
    (``store.authorization.revoke_access_token``) and
    ``store.authorization.live_access_token(jti, None, client_id)`` checks it.
    """
    lifetime = lifetime or current_app.config["CLIENT_CREDENTIALS_TOKEN_LIFETIME"]
    claims = access_token_claims(
        client_id=client_id, sub=client_id, aud=aud, scope=scope, lifetime=lifetime,
        grant_id=None, context={}, fhir_user=None)
    return {
        "access_token": keystore.get_signer().sign(claims, typ="at+jwt"),
        "token_type": "Bearer",
        "expires_in": lifetime,
        "scope": scope,
    }
