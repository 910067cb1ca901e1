"""THE one place grants, extensions, endpoints and client-auth methods are registered.

What is registered here is also what discovery advertises (:attr:`features`), so the
documents never claim anything that is not wired in.
"""

from __future__ import annotations

from typing import Any

from authlib.common.urls import add_params_to_uri
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Request
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidRequestError
from flask import Flask, current_app
from flask import g as flask_g
from flask import request as flask_request

from authserver import store
from authserver.extensions import limiter
from authserver.oauth.clients import OAuthClient
from authserver.oauth.http_basic import basic_credentials
from authserver.oauth.oidc import OpenIDConnect
from authserver.oauth.pkce import S256CodeChallenge
from authserver.oauth.rfc6749 import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
)
from authserver.oauth.rfc7009 import SmartRevocationEndpoint
from authserver.oauth.rfc7523 import PrivateKeyJWT
from authserver.oauth.rfc7662 import SmartIntrospectionEndpoint
from authserver.oauth.rfc9068 import PublicKeys
from authserver.oauth.smart_launch import SmartLaunch
from authserver.smart.client_types import AuthMethod
from authserver.smart.configuration import Features

__all__ = ["SmartAuthorizationServer", "current", "init_app"]

class SmartAuthorizationServer(AuthorizationServer):
    #: What the server itself brings: Authlib's built-in client authentication methods,
    #: the token endpoint and our JWKS, and the endpoints served by views around it
    #: (``/register``: RFC 7591; ``/account``: SMART's management_endpoint).
    FEATURES = Features(
        auth_methods={AuthMethod.NONE.value, AuthMethod.CLIENT_SECRET_BASIC.value,
                      AuthMethod.CLIENT_SECRET_POST.value},
        capabilities={"client-public", "client-confidential-symmetric"},
        endpoints={"token_endpoint", "jwks_uri", "registration_endpoint",
                   "management_endpoint"},
    )

    def __init__(self) -> None:
        super().__init__()
        self.features = Features()

    def authenticate_client(self, request: Any, methods: list[str],
                            endpoint: str = "token") -> Any:
        """Authlib's client authentication, after :meth:`check_one_auth_method` (every
        endpoint that authenticates clients comes through here: /token, /revoke,
        /introspect, /launch)."""
        self.check_one_auth_method(request)
        client = super().authenticate_client(request, methods, endpoint)
        if endpoint == "token":
            flask_g.token_client_id = client.client_id  # for the CORS headers of the answer
        return client

    def check_one_auth_method(self, request: Any) -> tuple[str, str] | None:
        """RFC 6749 §2.3: "The client MUST NOT use more than one authentication method in
        each request." HTTP Basic (or a bearer token), ``client_secret`` in the body and a
        ``client_assertion`` are each a method: two of them, or a body ``client_id`` that
        is not the Basic one, is ``invalid_request`` (§5.2 "utilizes more than one
        mechanism for authenticating the client"). Returns the Basic credentials, if any;
        Basic credentials that cannot be read (not base64, not UTF-8, no client id) are
        ``invalid_client`` with 401, as §5.2 requires after an Authorization header."""
        authorization = request.headers.get("Authorization")
        scheme = (authorization or "").strip().partition(" ")[0].lower()
        form = request.form
        used = [name for name, present in (
            ("HTTP " + scheme.capitalize(), scheme in ("basic", "bearer")),
            ("'client_secret'", "client_secret" in form),
            ("'client_assertion'", "client_assertion" in form
             or "client_assertion_type" in form)) if present]
        if len(used) > 1:
            raise InvalidRequestError(
                f"Use one client authentication method, not {' and '.join(used)}")
        if scheme != "basic":
            return None
        creds = basic_credentials(authorization)
        if creds is None:
            raise InvalidClientError(status_code=401,
                                     description="Malformed HTTP Basic credentials")
        # (Authlib's 'none' method reads client_id from the query string too.)
        sent = [*form.getlist("client_id"), *request.args.getlist("client_id")]
        if any(cid != creds[0] for cid in sent):
            raise InvalidRequestError("'client_id' differs from the HTTP Basic client")
        return creds

    def query_client(self, client_id: str) -> OAuthClient | None:
        # A read-only snapshot from one Core SELECT: every token request runs this, and the
        # ORM session costs more than the lookup (docs/performance.md).
        row = store.clients.find_client(client_id)
        return OAuthClient(row) if row is not None and row.kind == "app" else None

    def resumed_grant(self, request: OAuth2Request, client: OAuthClient,
                      redirect_uri: str) -> Any:
        """The authorization-code grant of a request validated when it arrived (a parked
        one), with the client and redirect URI it was validated with, not validated again
        (the caller re-checks what can have changed since)."""
        grant = self.get_authorization_grant(request)
        grant.request.client = client  # what Authlib's validation would have set
        grant.redirect_uri = redirect_uri
        return grant

    def authorization_response(self, grant: Any, grant_user: Any) -> Any:
        """Authlib's ``create_authorization_response`` for a grant validated earlier: the
        code (or ``access_denied`` when ``grant_user`` is None) back to the redirect URI;
        an error while issuing (a launch used meanwhile) goes there too, with ``state``."""
        try:
            response = self.handle_response(
                *grant.create_authorization_response(grant.redirect_uri, grant_user))
        except OAuth2Error as error:
            error.state = grant.request.payload.state
            error.redirect_uri = error.redirect_uri or grant.redirect_uri
            response = self.handle_error_response(grant.request, error)
        grant.execute_hook("after_authorization_response", response)
        return response

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        # A parked /authorize request is rebuilt from its stored parameters.
        if isinstance(request, OAuth2Request):
            return request
        return FlaskOAuth2Request(flask_request)

    def save_token(self, token: dict, request: Any) -> None:
        return None  # the grants persist what they issue

    def handle_response(self, status_code: int, payload: Any, headers: Any):
        # RFC 9207 §2: every authorization response, errors included, carries `iss`.
        if status_code == 302:
            headers = [(k, add_params_to_uri(v, {"iss": current_app.config["ISSUER"]})
                        if k.lower() == "location" else v) for k, v in headers]
        return super().handle_response(status_code, payload, headers)


def current() -> SmartAuthorizationServer:
    """The current app's authorization server (built by :func:`init_app`, one per app)."""
    return current_app.extensions["authserver.authorization"]


def _is_token_request() -> bool:
    return flask_request.path == "/token"


#: Everything registered, in order: (grant, its extensions), endpoints, client
#: authentication methods. Discovery advertises the union of their ``FEATURES``, so the
#: documents claim nothing that is not wired in (fosite's compose table of contents).
GRANTS: tuple[tuple[type, tuple[type, ...]], ...] = (
    (AuthorizationCodeGrant, (S256CodeChallenge, SmartLaunch, OpenIDConnect)),
    (RefreshTokenGrant, (OpenIDConnect,)),
    # SMART Backend Services: client_credentials with private_key_jwt.
    (ClientCredentialsGrant, ()),
)
ENDPOINTS: tuple[type, ...] = (SmartIntrospectionEndpoint, SmartRevocationEndpoint)
CLIENT_AUTH: tuple[type, ...] = (PrivateKeyJWT,)


def _register(server: SmartAuthorizationServer) -> list[Features]:
    """Register every component; returns their declared features."""
    parts = [server.FEATURES]
    for grant, extensions in GRANTS:
        server.register_grant(grant, [ext() for ext in extensions])
        parts += [grant.FEATURES, *(ext.FEATURES for ext in extensions)]
    for endpoint in ENDPOINTS:
        server.register_endpoint(endpoint)
        parts.append(endpoint.FEATURES)
    for method in CLIENT_AUTH:
        server.register_client_auth_method(method.CLIENT_AUTH_METHOD, method())
        parts.append(method.FEATURES)
    return parts


def init_app(app: Flask) -> None:
    """Build the app's authorization server and its caches (in ``app.extensions``: nothing
    is shared between apps, so tests need no cache surgery)."""
    server = SmartAuthorizationServer()
    server.init_app(app)
    server.features = Features.union(*_register(server))
    app.extensions["authserver.authorization"] = server
    app.extensions["authserver.public_keys"] = PublicKeys()
    # /token has no rate limit (secrets are 256-bit, assertions signed): skip Flask-Limiter's
    # per-request bookkeeping there, a measurable share of the hot path (docs/performance.md).
    limiter.request_filter(_is_token_request)
