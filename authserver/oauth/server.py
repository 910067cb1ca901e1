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
from flask import Flask, current_app
from flask import request as flask_request

from authserver.oauth import storage
from authserver.oauth.clients import OAuthClient
from authserver.oauth.grants import AuthorizationCodeGrant, RefreshTokenGrant
from authserver.oauth.launch import SmartLaunch
from authserver.oauth.pkce import S256CodeChallenge
from authserver.smart.configuration import Features

__all__ = ["SmartAuthorizationServer", "authorization", "init_app"]

#: Scopes we advertise in scopes_supported (resource scopes follow the v1/v2 grammar).
ADVERTISED_SCOPES = (
    "openid", "fhirUser", "profile", "email", "launch/patient", "offline_access",
    "patient/*.rs", "patient/*.read", "user/*.rs", "user/*.read",
)


class SmartAuthorizationServer(AuthorizationServer):
    def __init__(self) -> None:
        super().__init__()
        self.features = Features()

    def query_client(self, client_id: str) -> OAuthClient | None:
        row = storage.get_client(client_id)
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


authorization = SmartAuthorizationServer()


def init_app(app: Flask) -> None:
    server = authorization
    server.init_app(app)
    f = server.features
    server.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(), SmartLaunch()])
    server.register_grant(RefreshTokenGrant)
    f.grant_types |= {"authorization_code", "refresh_token"}
    f.response_types |= {"code"}
    f.code_challenge_methods |= {"S256"}
    f.endpoints |= {"authorization_endpoint", "token_endpoint", "jwks_uri"}
    f.auth_methods |= {"none", "client_secret_basic", "client_secret_post"}
    f.capabilities |= {
        "launch-standalone", "authorize-post",
        "client-public", "client-confidential-symmetric",
        "sso-openid-connect", "context-standalone-patient",
        "permission-offline", "permission-patient", "permission-v1", "permission-v2",
    }
    f.scopes |= set(ADVERTISED_SCOPES)
    f.claims |= {"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash",
                 "fhirUser", "name", "email"}
