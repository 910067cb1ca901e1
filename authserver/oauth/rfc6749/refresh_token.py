"""The refresh-token grant (RFC 6749 §6), as SMART App Launch 2.2 writes it.

https://www.rfc-editor.org/rfc/rfc6749#section-6. Refresh tokens rotate on every use;
presenting a rotated one revokes the whole grant (RFC 9700 §4.14, SMART best practices). A
public app's token names its client; every access token is narrowed to the person's ceiling
of today.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import (
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    UnauthorizedClientError,
)
from flask import g

from authserver import store
from authserver.oauth.ceilings import ceiling_for
from authserver.oauth.rfc6749.common import (
    CLIENT_AUTH_METHODS,
    refresh_policy,
)
from authserver.oauth.tokens import issue_tokens
from authserver.smart.ceiling import apply_ceiling
from authserver.smart.client_types import AuthMethod, GrantType
from authserver.smart.configuration import Features
from authserver.smart.grammar import ScopeError, format_scopes, is_subset, parse_scopes

if TYPE_CHECKING:
    from authserver.models import User

__all__ = ["RefreshTokenGrant"]

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

    def _authenticated_client(self) -> Any:
        """The client that authenticated at the token endpoint, allowed this grant type
        (RFC 6749 §5.2 ``unauthorized_client``)."""
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError(
                f"The client is not authorized to use 'grant_type={self.GRANT_TYPE}'")
        self.request.client = client  # (the server noted it for the answer's CORS headers)
        return client

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
            client = self._authenticated_client()
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
        refresh, refresh_exp, _ = refresh_policy(client, row.scope, grant.session_id)
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
