"""The authorization-code grant (RFC 6749 §4.1), tuned for SMART.

https://www.rfc-editor.org/rfc/rfc6749#section-4.1. Codes are consumed atomically before
anything is issued; a replayed code revokes every token issued from it (RFC 6749 §4.1.2,
RFC 9700 §4.5). S256 PKCE, the SMART launch checks and OpenID Connect are extensions
attached in ``oauth/server.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import (
    InvalidGrantError,
    InvalidRequestError,
)
from flask import current_app

from authserver import clock, store
from authserver.oauth.rfc6749.common import (
    CLIENT_AUTH_METHODS,
    refresh_policy,
)
from authserver.oauth.tokens import issue_tokens
from authserver.oauth.wire import quote_param
from authserver.smart.client_types import GrantType
from authserver.smart.configuration import Features

if TYPE_CHECKING:
    from authserver.models import AuthorizationCode, User

__all__ = ["Authorization", "AuthorizationCodeGrant"]

@dataclass
class Authorization:
    """What the signed-in user decided, handed to Authlib as ``grant_user``."""

    user: User
    session_id: str | None
    auth_time: int
    scope: str
    context: dict[str, Any] = field(default_factory=dict)
    launch_row: Any = None


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    FEATURES = Features(grant_types={GrantType.AUTHORIZATION_CODE.value}, response_types={"code"},
                        endpoints={"authorization_endpoint"})
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS
    AUTHORIZATION_CODE_LENGTH = 43  # ~256 bits of the URL-safe alphabet

    @staticmethod
    def validate_no_multiple_request_parameter(request: Any) -> None:
        """RFC 6749 §3.1: parameters "MUST NOT be included more than once".

        Authlib checks this before the client is known, so every repeat became an error
        page. Only a repeated ``client_id`` or ``redirect_uri`` must stay a page (the
        redirect target is not trusted, RFC 6749 §4.1.2.1); any other repeat is refused by
        :class:`~authserver.oauth.smart_launch.SmartLaunch` once the redirect URI is validated,
        and so goes back to the app as ``invalid_request``.
        """
        for param in ("client_id", "redirect_uri"):
            if len(request.payload.datalist.get(param, [])) > 1:
                raise InvalidRequestError(f"Multiple '{param}' in request")

    @staticmethod
    def validate_authorization_redirect_uri(request: Any, client: Any) -> str:
        """RFC 6749 §4.1.2.1: an unregistered ``redirect_uri`` is shown, never redirected.

        Authlib quotes the raw URI in ``error_description``, whose characters are limited
        to printable ASCII (it raises otherwise: a 500); here it is quoted safely.
        """
        asked = request.payload.redirect_uri
        if asked and not client.check_redirect_uri(asked):
            raise InvalidRequestError(
                f"Redirect URI '{quote_param(asked, 200)}' is not registered for this app")
        return grants.AuthorizationCodeGrant.validate_authorization_redirect_uri(request,
                                                                                 client)

    def save_authorization_code(self, code: str, request: Any) -> AuthorizationCode:
        auth: Authorization = request.user
        data = request.payload.data
        if auth.launch_row is not None and not store.interaction.consume_launch(auth.launch_row):
            raise InvalidRequestError("'launch' was already used or has expired")
        return store.authorization.save_code(
            code,
            client_id=request.client.client_id,
            user_id=auth.user.id,
            session_id=auth.session_id,
            redirect_uri=request.payload.redirect_uri,
            scope=auth.scope,
            aud=request.smart.aud,
            nonce=data.get("nonce"),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            context=auth.context,
            auth_time=auth.auth_time,
            expires_at=clock.now() + current_app.config["AUTHORIZATION_CODE_LIFETIME"],
        )

    def query_authorization_code(self, code: str, client: Any) -> AuthorizationCode | None:
        if not isinstance(code, str) or len(code) > 256:
            return None
        row, replayed = store.authorization.consume_code(code, client.client_id)
        if replayed:
            # RFC 6749 §4.1.2: "If an authorization code is used more than once, the
            # authorization server MUST deny the request and SHOULD revoke (when possible)
            # all tokens previously issued based on that authorization code."
            store.authorization.revoke_grant_of_code(code)
            current_app.logger.warning("authorization code replayed by client %s",
                                       client.client_id)
        return row

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        return None  # consumed atomically in query_authorization_code

    def authenticate_user(self, authorization_code: AuthorizationCode) -> User | None:
        return store.accounts.get_user(authorization_code.user_id)

    def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None,
                       include_refresh_token=True):
        code: AuthorizationCode = self.request.authorization_code
        client = self.request.client
        refresh, refresh_exp, session_id = refresh_policy(client, code.scope, code.session_id)
        with store.transaction():  # the grant, its refresh token and the code's mark, whole
            grant = store.authorization.create_grant(
                client_id=client.client_id, user_id=user.id, session_id=session_id,
                scope=code.scope, aud=code.aud, context=dict(code.context or {}),
                expires_at=clock.now())
            token = issue_tokens(client=client.row, grant=grant, scope=code.scope, user=user,
                                 include_refresh=refresh, refresh_expires_at=refresh_exp)
            self.execute_hook("process_token", token, user=user, client=client.row,
                              grant_row=grant, nonce=code.nonce, auth_time=code.auth_time)
            if not store.authorization.attach_grant_to_code(code.id, grant.id):
                # A second redemption of this code came in while this one was issuing:
                # RFC 6749 §4.1.2 "the authorization server MUST deny the request" — both
                # lose (the block rolls back: nothing of this one is kept).
                raise InvalidGrantError("'code' was used more than once")
        return token

    def save_token(self, token: dict) -> None:
        return None  # persisted by issue_tokens


