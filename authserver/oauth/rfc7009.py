"""Token revocation (RFC 7009).

https://www.rfc-editor.org/rfc/rfc7009. Authlib's ``JWTRevocationEndpoint`` refuses JWT
access tokens, so this subclasses the plain RFC class and implements its hooks (DESIGN.md,
"Known traps"): an access token is revoked by its ``jti``, a refresh token with its grant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc7009 import RevocationEndpoint

from authserver import audit, store
from authserver.oauth.rfc7662 import require_token, token_endpoint_methods
from authserver.oauth.rfc9068 import verified_claims
from authserver.smart.configuration import Features

if TYPE_CHECKING:
    from authserver.models import RefreshToken

__all__ = ["SmartRevocationEndpoint"]


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

    FEATURES = Features(endpoints={"revocation_endpoint"})

    def authenticate_endpoint_client(self, request: Any) -> Any:
        client = self.server.authenticate_client(
            request, token_endpoint_methods(self.server, public=True), self.ENDPOINT_NAME)
        request.client = client
        return client

    def check_params(self, request: Any, client: Any) -> None:
        require_token(request)

    def query_token(self, token_string: str, token_type_hint: str | None) -> _Revocable | None:
        if token_string.count(".") == 2:
            claims = verified_claims(token_string)
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
