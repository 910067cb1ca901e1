"""Token introspection (RFC 7662, as profiled by SMART).

- RFC 7662 https://www.rfc-editor.org/rfc/rfc7662 and SMART App Launch 2.2 "Token
  Introspection" https://hl7.org/fhir/smart-app-launch/token-introspection.html
- Our access tokens are RFC 9068 JWTs, read by :mod:`authserver.oauth.rfc9068`.

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

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidRequestError
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from flask import current_app

from authserver import store
from authserver.oauth.clients import OAuthClient
from authserver.oauth.rfc6749.common import CLIENT_AUTH_METHODS
from authserver.oauth.rfc6750 import BearerChallenge, read_bearer
from authserver.oauth.rfc9068 import AccessTokenInfo, read_access_token
from authserver.smart.client_types import INTROSPECT_SCOPE, AuthMethod
from authserver.smart.configuration import Features
from authserver.smart.launch import token_context

if TYPE_CHECKING:
    from authserver.models import RefreshToken

__all__ = ["Caller", "SmartIntrospectionEndpoint", "require_token",
           "token_endpoint_methods"]


def require_token(request: Any) -> None:
    """RFC 7662 §2.1 and RFC 7009 §2.1: ``token`` is REQUIRED. The hint is advisory in
    both: "If the server is unable to locate the token using the given hint, it MUST
    extend its search across all of its supported token types" (7662), "An invalid token
    type hint value is ignored" (7009) -- so an unknown hint is never refused."""
    token = request.form.get("token")
    if not isinstance(token, str) or not token:
        raise InvalidRequestError("Missing 'token'")


def token_endpoint_methods(server: Any, *, public: bool) -> list[str]:
    """The client authentication methods of /token that are wired in (server.features)."""
    methods = [m for m in CLIENT_AUTH_METHODS if m in server.features.auth_methods]
    return methods if public else [m for m in methods if m != AuthMethod.NONE]


def _may_introspect_others(row: Any) -> bool:
    """Resource servers, and apps an administrator flagged, see every client's tokens."""
    return row.kind == "resource_server" or bool(row.can_introspect)


@dataclass(frozen=True)
class Caller:
    """Who called /introspect, and whether it may see tokens issued to other clients."""

    client_id: str
    any_token: bool


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

    FEATURES = Features(endpoints={"introspection_endpoint"})

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
                or row.token_endpoint_auth_method == AuthMethod.CLIENT_SECRET_BASIC)
            if not basic_ok or not OAuthClient(row).check_client_secret(creds[1]):
                raise BearerChallenge("invalid_client", "Client authentication failed",
                                      basic=True)
            return Caller(row.client_id, any_token=_may_introspect_others(row))
        try:
            client = self.server.authenticate_client(
                request, token_endpoint_methods(self.server, public=False),
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
        require_token(request)

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
