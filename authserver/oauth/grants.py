"""Authlib grants, tuned for SMART: authorization_code and refresh_token.

- Codes are consumed atomically before anything is issued; a replayed code revokes every
  token issued from it (RFC 6749 §4.1.2, RFC 9700 §4.5).
- Refresh tokens rotate on every use; presenting a rotated one revokes the whole grant
  (RFC 9700 §4.14, SMART best practices); ``offline_access`` ones slide 90 days (ONC
  (g)(10)); ``online_access`` ones die with the user's sign-in session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import (
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    UnauthorizedClientError,
)
from flask import current_app, g

from authserver import clock, store
from authserver.oauth.ceilings import ceiling_for
from authserver.oauth.tokens import issue_tokens
from authserver.oauth.wire import quote_param
from authserver.smart.ceiling import apply_ceiling
from authserver.smart.client_types import AuthMethod, GrantType
from authserver.smart.configuration import Features
from authserver.smart.grammar import ScopeError, format_scopes, is_subset, parse_scopes

if TYPE_CHECKING:
    from authserver.models import AuthorizationCode, User

__all__ = ["Authorization", "AuthorizationCodeGrant", "RefreshTokenGrant"]

#: Every method, in this order (plain strings: Authlib formats the list into an error text).
CLIENT_AUTH_METHODS = [m.value for m in AuthMethod]


@dataclass
class Authorization:
    """What the signed-in user decided, handed to Authlib as ``grant_user``."""

    user: User
    session_id: str | None
    auth_time: int
    scope: str
    context: dict[str, Any] = field(default_factory=dict)
    launch_row: Any = None


def _refresh_policy(client: Any, scope: str, session_id: str | None) -> tuple[bool, int | None,
                                                                           str | None]:
    """(include a refresh token, its expiry, the session it is bound to)."""
    if not client.check_grant_type(GrantType.REFRESH_TOKEN):
        return False, None, None
    kinds = {s.kind for s in parse_scopes(scope)}
    if "offline_access" in kinds:
        return True, clock.now() + current_app.config["OFFLINE_REFRESH_LIFETIME"], None
    if "online_access" in kinds and session_id:
        sess = store.accounts.get_session(session_id)
        if sess is not None:
            return True, sess.expires_at, session_id
    return False, None, None


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

    def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None,  # noqa: ANN001, ANN201
                       include_refresh_token=True):
        code: AuthorizationCode = self.request.authorization_code
        client = self.request.client
        refresh, refresh_exp, session_id = _refresh_policy(client, code.scope, code.session_id)
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


def authenticate_for_grant(grant: Any) -> Any:
    """Authenticate the client at the token endpoint and check it may use the grant type
    (RFC 6749 §5.2 ``unauthorized_client``); sets and returns ``request.client``."""
    client = grant.authenticate_token_endpoint_client()
    if not client.check_grant_type(grant.GRANT_TYPE):
        raise UnauthorizedClientError(
            f"The client is not authorized to use 'grant_type={grant.GRANT_TYPE}'")
    grant.request.client = client  # (the server noted it for the answer's CORS headers)
    return client


def _sends_credentials(request: Any) -> bool:
    """Whether the request carries any way of naming or authenticating a client."""
    form = request.form
    return bool(request.headers.get("Authorization")) or any(
        name in form or name in request.args
        for name in ("client_id", "client_secret", "client_assertion", "client_assertion_type"))


class RefreshTokenGrant(grants.RefreshTokenGrant):
    FEATURES = Features(grant_types={GrantType.REFRESH_TOKEN.value})
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def _public_client_of(self, row: Any) -> Any:
        """SMART App Launch 2.2 (refresh, public apps): authentication is "not possible
        (and thus not required)", and RFC 6749 §6 requires it of confidential clients only,
        so a public app's refresh request may carry nothing but ``grant_type``,
        ``refresh_token`` and ``scope`` (fhirclient.js sends no ``client_id``): the refresh
        token names its client. A confidential client's token still needs the client's
        own authentication (401 ``invalid_client`` without it)."""
        client = self.server.query_client(row.client_id)
        if client is None or client.row.token_endpoint_auth_method != AuthMethod.NONE:
            raise InvalidClientError(status_code=401,
                                     description="Client authentication is required")
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError(
                f"The client is not authorized to use 'grant_type={self.GRANT_TYPE}'")
        self.request.client = client
        g.token_client_id = client.client_id
        return client

    def validate_token_request(self) -> None:
        value = self.request.form.get("refresh_token")
        if _sends_credentials(self.request):
            client = authenticate_for_grant(self)
            if not value:
                raise InvalidRequestError("Missing 'refresh_token'")
            state = store.authorization.refresh_state(value)
        else:
            if not value:
                raise InvalidRequestError("Missing 'refresh_token'")
            state = store.authorization.refresh_state(value)
            if state is None:
                raise InvalidGrantError("Invalid 'refresh_token'")
            client = self._public_client_of(state.token)
        # A public client's client_id, when sent, must be the token's (else invalid_grant).
        if state is None or state.token.client_id != client.client_id:
            raise InvalidGrantError("Invalid 'refresh_token'")
        row = state.token
        requested = self.request.payload.scope
        if requested:
            # SMART: a requested scope MUST be a subset of the original grant.
            try:
                ok = is_subset(requested, row.scope)
            except ScopeError:
                ok = False
            if not ok:
                raise InvalidScopeError("'scope' exceeds what was granted")
        if state.live is None:
            if state.session_ended and state.grant.revoked_at is None:
                # online_access: "only while the user's session is active".
                raise InvalidGrantError("The sign-in session of this online grant has ended")
            if state.grant.revoked_at is None and state.grant.user_id is not None:
                raise InvalidGrantError("The user of this grant is no longer active")
            raise InvalidGrantError("Invalid 'refresh_token'")
        rotated = store.authorization.rotate_refresh_token(row, client.client_id)
        if rotated is None:
            raise InvalidGrantError("Invalid 'refresh_token'")
        self.request.refresh_token = rotated
        self.request.refresh_state = state

    @staticmethod
    def _within_ceiling(scope: str, user: User) -> str:
        """The access token never exceeds what the person may see *now*: a ceiling lowered
        (or a role changed) since the grant narrows every later access token."""
        kept = apply_ceiling(parse_scopes(scope), ceiling_for(user))
        if all(s.kind in ("launch", "launch_context") for s in kept):
            raise InvalidGrantError("This grant no longer fits what the account may access")
        return format_scopes(kept)

    # Authlib's own create_token_response runs the three hooks below in its order:
    # authenticate_user, issue_token, save_token, then revoke_old_credential. The old token
    # was already rotated in validate_token_request -- consumed BEFORE anything is issued,
    # so two racing refreshes cannot both win (RFC 9700 §4.14.2) -- which is why
    # validate_token_request is ours and revoke_old_credential has nothing left to do.

    def authenticate_user(self, refresh_token: Any) -> User | None:
        return self.request.refresh_state.user  # enabled: a disabled one was refused

    def issue_token(self, user: User, refresh_token: Any) -> dict[str, Any]:
        row, state, client = refresh_token, self.request.refresh_state, self.request.client
        grant = state.grant
        scope = " ".join(s.raw for s in parse_scopes(self.request.payload.scope or row.scope))
        scope = self._within_ceiling(scope, user)
        refresh, refresh_exp, _ = _refresh_policy(client, row.scope, grant.session_id)
        if grant.session_id:
            refresh_exp = state.session_expires_at
        # RFC 6749 §6: "the refresh token scope MUST be identical to that of the refresh
        # token included by the client in the request" -- a narrowed `scope` narrows only
        # the access token.
        with store.transaction():
            token = issue_tokens(client=client.row, grant=grant, scope=scope, user=user,
                                 include_refresh=refresh, refresh_expires_at=refresh_exp,
                                 refresh_scope=row.scope)
            self.execute_hook("process_token", token, user=user, client=client.row,
                              grant_row=grant)
        return token

    def save_token(self, token: dict) -> None:
        return None  # persisted by issue_tokens

    def revoke_old_credential(self, refresh_token: Any) -> None:
        return None  # rotated (consumed) before issuing, in validate_token_request
