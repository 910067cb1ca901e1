"""THE one place grants, extensions, endpoints and client-auth methods are registered.

What is registered here is also what discovery advertises (:attr:`features`), so the
documents never claim anything that is not wired in.
"""

from __future__ import annotations

from typing import Any

from authlib.common.urls import add_params_to_uri
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Request
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidRequestError
from flask import Flask, current_app
from flask import request as flask_request

from authserver import store
from authserver.extensions import limiter
from authserver.oauth.backend import ClientCredentialsGrant
from authserver.oauth.clients import OAuthClient
from authserver.oauth.endpoints import (
    PublicKeys,
    SmartIntrospectionEndpoint,
    SmartRevocationEndpoint,
    basic_credentials,
)
from authserver.oauth.grants import AuthorizationCodeGrant, RefreshTokenGrant
from authserver.oauth.launch import SmartLaunch
from authserver.oauth.pkce import S256CodeChallenge
from authserver.oauth.rfc7523 import PrivateKeyJWT
from authserver.smart.configuration import Features

__all__ = ["SmartAuthorizationServer", "current", "init_app"]

#: Scopes we advertise in scopes_supported (resource scopes follow the v1/v2 grammar).
ADVERTISED_SCOPES = (
    "openid", "fhirUser", "profile", "email", "launch/patient", "offline_access",
    "patient/*.rs", "patient/*.read", "user/*.rs", "user/*.read",
    "system/*.rs", "system/*.read",
)


class SmartAuthorizationServer(AuthorizationServer):
    def __init__(self) -> None:
        super().__init__()
        self.features = Features()

    def authenticate_client(self, request: Any, methods: list[str],
                            endpoint: str = "token") -> Any:
        """Authlib's client authentication, after :meth:`check_one_auth_method` (every
        endpoint that authenticates clients comes through here: /token, /revoke,
        /introspect, /launch)."""
        self.check_one_auth_method(request)
        return super().authenticate_client(request, methods, endpoint)

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

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        # A parked /authorize request is re-validated from its stored parameters.
        if isinstance(request, OAuth2Request):
            return request
        return FlaskOAuth2Request(flask_request)

    def save_token(self, token: dict, request: Any) -> None:
        return None  # the grants persist what they issue

    def handle_response(self, status_code: int, payload: Any, headers: Any):  # noqa: ANN201
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


def init_app(app: Flask) -> None:
    """Build the app's authorization server and its caches (in ``app.extensions``: nothing
    is shared between apps, so tests need no cache surgery)."""
    server = SmartAuthorizationServer()
    server.init_app(app)
    app.extensions["authserver.authorization"] = server
    app.extensions["authserver.public_keys"] = PublicKeys()
    f = server.features
    server.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(), SmartLaunch()])
    server.register_grant(RefreshTokenGrant)
    f.grant_types |= {"authorization_code", "refresh_token"}
    f.response_types |= {"code"}
    f.code_challenge_methods |= {"S256"}
    f.endpoints |= {"authorization_endpoint", "token_endpoint", "jwks_uri",
                    "registration_endpoint"}
    f.auth_methods |= {"none", "client_secret_basic", "client_secret_post"}
    f.capabilities |= {
        "launch-standalone", "authorize-post",
        "client-public", "client-confidential-symmetric",
        "sso-openid-connect", "context-standalone-patient",
        "permission-offline", "permission-patient", "permission-v1", "permission-v2",
    }
    # SMART Backend Services: client_credentials with private_key_jwt (any endpoint).
    server.register_grant(ClientCredentialsGrant)
    server.register_client_auth_method(PrivateKeyJWT.CLIENT_AUTH_METHOD, PrivateKeyJWT())
    f.grant_types |= {"client_credentials"}
    f.auth_methods |= {"private_key_jwt"}
    f.auth_signing_algs |= set(PrivateKeyJWT.ALGORITHMS)
    f.capabilities |= {"client-confidential-asymmetric"}
    # /token has no rate limit (secrets are 256-bit, assertions signed): skip Flask-Limiter's
    # per-request bookkeeping there, a measurable share of the hot path (docs/performance.md).
    limiter.request_filter(_is_token_request)
    # Token lifecycle: RFC 7662 introspection, RFC 7009 revocation, OIDC userinfo, and the
    # user's connected-apps page (SMART management_endpoint).
    server.register_endpoint(SmartIntrospectionEndpoint)
    server.register_endpoint(SmartRevocationEndpoint)
    f.endpoints |= {"introspection_endpoint", "revocation_endpoint", "userinfo_endpoint",
                    "management_endpoint"}
    f.scopes |= set(ADVERTISED_SCOPES)
    f.claims |= {"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash",
                 "fhirUser", "name", "email"}
    # OIDC Core §3.1.2.1 prompt (and max_age), honoured by authserver.oauth.authorize.
    f.prompt_values |= {"none", "login", "consent", "select_account"}
    # Clinicians and EHRs (issue 4): EHR launch with its context (SmartLaunch, POST /launch,
    # /smart-style.json), the clinician's patient picker, user/ scopes, and online_access
    # refresh tokens that end with the sign-in session. Each proven by tests/flows/
    # test_ehr_launch.py, test_picker.py and test_online_access.py.
    f.capabilities |= {
        "launch-ehr", "context-ehr-patient", "context-ehr-encounter", "context-banner",
        "context-style", "context-standalone-patient", "permission-user", "permission-online",
    }
    f.scopes |= {"launch", "online_access"}
