"""Token introspection (RFC 7662, as profiled by SMART) and revocation (RFC 7009).

- RFC 7662 https://www.rfc-editor.org/rfc/rfc7662 and SMART App Launch 2.2 "Token
  Introspection" https://hl7.org/fhir/smart-app-launch/token-introspection.html
- RFC 7009 https://www.rfc-editor.org/rfc/rfc7009
- RFC 6750 §3 https://www.rfc-editor.org/rfc/rfc6750#section-3 (bearer-token challenges)

Our access tokens are RFC 9068 JWTs that are never stored: one is *active* when its
signature verifies against our published keys (cached per process, re-read on an unknown
``kid``), its claims are ours and unexpired, and one indexed lookup finds neither its
``jti`` revoked nor its grant revoked (:func:`store.authorization.live_access_token`).
Revocation is a database row, so it is seen at once by every worker and every instance
sharing the database.
Authlib's ``JWTRevocationEndpoint`` refuses JWT access tokens, so both endpoints subclass
the plain RFC classes and implement their hooks here (DESIGN.md, "Known traps").

Who may introspect (RFC 7662 §2.1 "the endpoint MUST also require some form of
authorization"):

- a resource server (``authserver resource-server create``) with HTTP Basic: any token;
- an app with its registered client authentication: only tokens issued to it, unless an
  administrator gave it ``Client.can_introspect`` (``authserver client create
  --can-introspect``, ``authserver client permissions``, the admin console): any token;
- ``Authorization: Bearer`` with one of our live access tokens whose scope includes
  :data:`INTROSPECT_SCOPE` (SMART 2.2: an appropriately-scoped SMART App or Backend
  Services token) AND whose client has ``can_introspect``: any token. The scope alone is
  not enough: a developer can ask for any scope string, and only an administrator
  decides who reads other apps' tokens.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from authlib.consts import default_json_headers
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidRequestError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from flask import current_app

from authserver import audit, clock, jose, store
from authserver.models import RefreshToken
from authserver.oauth import keystore
from authserver.oauth.clients import OAuthClient
from authserver.oauth.grants import CLIENT_AUTH_METHODS
from authserver.oauth.registration import INTROSPECT_SCOPE
from authserver.smart.launch import token_context

__all__ = [
    "INTROSPECT_SCOPE", "PUBLIC_KEYS_TTL", "AccessTokenInfo", "BearerChallenge",
    "SmartIntrospectionEndpoint", "SmartRevocationEndpoint", "read_access_token",
    "read_bearer", "has_scope", "basic_credentials",
]

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


# ---- reading our own access tokens -------------------------------------------------

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


def _verified_claims(token: Any) -> dict[str, Any] | None:
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
    claims = _verified_claims(token)
    if claims is None:
        return None
    live, grant = store.authorization.live_access_token(claims["jti"], claims.get("gid"),
                                            claims["client_id"])
    return AccessTokenInfo(claims, grant) if live else None


def has_scope(info: AccessTokenInfo, scope: str) -> bool:
    return scope in info.scopes


# ---- RFC 6750 bearer challenges ------------------------------------------------------

class BearerChallenge(OAuth2Error):
    """A 401/403 with RFC 6750 §3 ``WWW-Authenticate`` challenges (Basic too, when the
    endpoint also accepts client credentials). Descriptions never contain a token."""

    def __init__(self, error: str | None, description: str, *, status_code: int = 401,
                 scope: str | None = None, basic: bool = False) -> None:
        super().__init__(description=description, status_code=status_code)
        self.error = error or "invalid_request"
        self._wire_error = error
        self._scope = scope
        self._basic = basic

    def get_body(self) -> list[tuple[str, Any]]:
        if self._wire_error is None:
            # RFC 6750 §3.1: a request without credentials gets no error code; the body
            # still says what happened.
            return [("error", "invalid_client" if self._basic else "invalid_request"),
                    ("error_description", self.description)]
        return super().get_body()

    def get_headers(self) -> list[tuple[str, str]]:
        headers = list(default_json_headers)
        realm = f'realm="{current_app.config["ISSUER"]}"'
        parts = [realm]
        if self._wire_error:
            parts.append(f'error="{self._wire_error}"')
            parts.append(f'error_description="{self.description.replace(chr(34), "")}"')
        if self._scope:
            parts.append(f'scope="{self._scope}"')
        if self._basic:
            headers.append(("WWW-Authenticate", f"Basic {realm}"))
        headers.append(("WWW-Authenticate", "Bearer " + ", ".join(parts)))
        return headers


def read_bearer(authorization: str | None, *, required_scope: str | None = None,
                basic: bool = False) -> AccessTokenInfo:
    """The active access token of an ``Authorization: Bearer`` header, or a
    :class:`BearerChallenge` (401 without or with a bad token, 403 without ``required_scope``).
    """
    scheme, _, value = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        raise BearerChallenge(None, "An access token is required", basic=basic)
    info = read_access_token(value.strip())
    if info is None:
        raise BearerChallenge("invalid_token", "The access token is not active", basic=basic)
    if required_scope and not has_scope(info, required_scope):
        raise BearerChallenge("insufficient_scope",
                              f"The access token lacks the '{required_scope}' scope",
                              status_code=403, scope=required_scope, basic=basic)
    return info


# ---- client authentication shared by both endpoints -----------------------------------

def _token_endpoint_methods(server: Any, *, public: bool) -> list[str]:
    """The client authentication methods of /token that are wired in (server.features)."""
    methods = [m for m in CLIENT_AUTH_METHODS if m in server.features.auth_methods]
    return methods if public else [m for m in methods if m != "none"]


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


def _may_introspect_others(row: Any) -> bool:
    """Resource servers, and apps an administrator flagged, see every client's tokens."""
    return row.kind == "resource_server" or bool(row.can_introspect)


@dataclass(frozen=True)
class Caller:
    """Who called /introspect, and whether it may see tokens issued to other clients."""

    client_id: str
    any_token: bool


# ---- RFC 7662 --------------------------------------------------------------------------

@dataclass(frozen=True)
class _Introspected:
    kind: str  # 'access_token' | 'refresh_token'
    client_id: str
    body: dict[str, Any]

    # Authlib's create_introspection_payload asks these; query_token returns live tokens.
    def is_expired(self) -> bool:
        return False

    def is_revoked(self) -> bool:
        return False


def _grant_fields(grant: store.authorization.LiveGrant | None) -> dict[str, Any]:
    if grant is None:
        return {}
    # SMART: "If a launch context parameter ... was included in the original access token
    # response, the parameter SHALL be included in the token introspection response."
    fields = token_context(grant.context, grant.scope.split())
    # SMART: "If an id_token was included in the original access token response, the
    # following claims from the ID Token SHALL be included": iss, sub (SHOULD: fhirUser).
    for name in ("iss", "sub", "fhirUser"):
        if grant.id_token_claims and grant.id_token_claims.get(name):
            fields[name] = grant.id_token_claims[name]
    return fields


def _access_token_body(info: AccessTokenInfo) -> dict[str, Any]:
    c = info.claims
    # SMART: scope "as included in the original access token response", client_id, exp.
    body: dict[str, Any] = {
        "active": True, "scope": c["scope"], "client_id": c["client_id"],
        "token_type": "Bearer", "exp": c["exp"], "iat": c["iat"], "sub": c["sub"],
        "aud": c.get("aud"), "iss": c["iss"], "jti": c["jti"],
    }
    for name in ("patient", "encounter", "fhirUser"):
        if name in c:
            body[name] = c[name]
    body.update(_grant_fields(info.grant))
    return body


def _refresh_token_body(refresh: RefreshToken, grant: store.authorization.LiveGrant
                        ) -> dict[str, Any]:
    body: dict[str, Any] = {
        "active": True, "scope": refresh.scope, "client_id": refresh.client_id,
        "exp": refresh.expires_at, "iat": refresh.issued_at,
        "sub": str(grant.user_id) if grant.user_id is not None else grant.client_id,
        "aud": grant.aud, "iss": current_app.config["ISSUER"],
    }
    body.update(_grant_fields(grant))
    return body


class SmartIntrospectionEndpoint(IntrospectionEndpoint):
    """POST /introspect. Inactive, unknown or not-yours tokens all answer ``{"active":
    false}`` and nothing more (RFC 7662 §2.2)."""

    def authenticate_endpoint_client(self, request: Any) -> Caller:
        authorization = request.headers.get("Authorization")
        try:
            # RFC 6749 §2.3: one authentication method per request (a bearer token is one).
            creds = self.server.check_one_auth_method(request)
        except InvalidClientError:
            raise BearerChallenge("invalid_client", "Malformed HTTP Basic credentials",
                                  basic=True) from None
        scheme = (authorization or "").strip().partition(" ")[0].lower()
        if scheme == "bearer":
            return self._bearer_caller(authorization)
        if creds is not None:
            # One read-only lookup serves resource servers and client_secret_basic apps.
            row = store.clients.find_client(creds[0])
            basic_ok = row is not None and (
                row.kind == "resource_server"
                or row.token_endpoint_auth_method == "client_secret_basic")
            if not basic_ok or not OAuthClient(row).check_client_secret(creds[1]):
                raise BearerChallenge("invalid_client", "Client authentication failed",
                                      basic=True)
            return Caller(row.client_id, any_token=_may_introspect_others(row))
        try:
            client = self.server.authenticate_client(
                request, _token_endpoint_methods(self.server, public=False),
                self.ENDPOINT_NAME)
        except InvalidClientError:
            # RFC 7662 §2.1: an unauthorized caller gets 401 (never token information).
            raise BearerChallenge(None if not authorization else "invalid_client",
                                  "Client authentication failed", basic=True) from None
        return Caller(client.client_id, any_token=_may_introspect_others(client.row))

    @staticmethod
    def _bearer_caller(authorization: str | None) -> Caller:
        """A bearer token may introspect any token when it has the ``introspect`` scope AND
        an administrator gave its client ``can_introspect`` (checked now, so taking the
        permission away takes effect at once, for tokens already issued too)."""
        # RFC 7662 §2.1: a bearer token "that does not contain sufficient privileges or
        # is otherwise invalid" gets "an HTTP 401 code" (RFC 6750 §3).
        try:
            info = read_bearer(authorization, required_scope=INTROSPECT_SCOPE, basic=True)
        except BearerChallenge as exc:
            exc.status_code = 401
            raise
        row = store.clients.find_client(info.claims["client_id"])
        if row is None or not row.can_introspect:
            raise BearerChallenge("insufficient_scope",
                                  "The client of this access token may not introspect tokens",
                                  basic=True)
        return Caller(row.client_id, any_token=True)

    def check_params(self, request: Any, client: Any) -> None:
        token = request.form.get("token")
        if not isinstance(token, str) or not token:
            raise InvalidRequestError("Missing 'token'")
        # RFC 7662 §2.1: the hint is advisory; "If the server is unable to locate the token
        # using the given hint, it MUST extend its search across all of its supported token
        # types" -- so an unknown hint is ignored rather than refused.

    def query_token(self, token_string: str, token_type_hint: str | None) -> _Introspected | None:
        if token_string.count(".") == 2:
            info = read_access_token(token_string)
            if info is None:
                return None
            return _Introspected("access_token", info.claims["client_id"],
                                 _access_token_body(info))
        found = store.authorization.live_refresh_token(token_string)
        if found is None:
            return None
        refresh, grant = found
        return _Introspected("refresh_token", refresh.client_id,
                             _refresh_token_body(refresh, grant))

    def check_permission(self, token: _Introspected, client: Caller, request: Any) -> bool:
        # An app sees only its own tokens; a resource server or permitted bearer, any.
        return client.any_token or token.client_id == client.client_id

    def introspect_token(self, token: _Introspected) -> dict[str, Any]:
        return dict(token.body)


# ---- RFC 7009 --------------------------------------------------------------------------

@dataclass(frozen=True)
class _Revocable:
    kind: str  # 'access_token' | 'refresh_token'
    client_id: str
    jti: str | None = None
    expires_at: int = 0
    refresh: RefreshToken | None = None

    def check_client(self, client: Any) -> bool:
        return self.client_id == client.get_client_id()


class SmartRevocationEndpoint(RevocationEndpoint):
    """POST /revoke: client authentication as for /token; 200 for unknown tokens."""

    def authenticate_endpoint_client(self, request: Any) -> Any:
        client = self.server.authenticate_client(
            request, _token_endpoint_methods(self.server, public=True), self.ENDPOINT_NAME)
        request.client = client
        return client

    def check_params(self, request: Any, client: Any) -> None:
        token = request.form.get("token")
        if not isinstance(token, str) or not token:
            raise InvalidRequestError("Missing 'token'")
        # RFC 7009 §2.1: "An invalid token type hint value is ignored by the authorization
        # server and does not influence the revocation response."

    def query_token(self, token_string: str, token_type_hint: str | None) -> _Revocable | None:
        if token_string.count(".") == 2:
            claims = _verified_claims(token_string)
            if claims is None:
                return None  # RFC 7009 §2.2: invalid tokens answer 200 all the same
            return _Revocable("access_token", claims["client_id"], jti=claims["jti"],
                              expires_at=claims["exp"])
        row = store.authorization.find_refresh_token(token_string)
        if row is None:
            return None
        return _Revocable("refresh_token", row.client_id, refresh=row)

    @store.transaction()
    def revoke_token(self, token: _Revocable, request: Any) -> None:
        # Recorded first, so that an access token's revocation (a unique INSERT that
        # commits on its own, like a jti) carries it.
        audit.record("token.revoked", client_id=token.client_id, kind=token.kind)
        if token.kind == "access_token":
            store.authorization.revoke_access_token(token.jti, token.expires_at)
        else:
            # RFC 7009 §2.1: revoking a refresh token "SHOULD also invalidate all access
            # tokens based on the same authorization grant" -- the whole grant ends.
            store.authorization.revoke_refresh_token(token.refresh)
