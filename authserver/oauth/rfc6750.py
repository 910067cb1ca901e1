"""Bearer tokens in the ``Authorization`` header and their challenges (RFC 6750).

https://www.rfc-editor.org/rfc/rfc6750#section-3: a 401/403 names the problem in a
``WWW-Authenticate: Bearer`` challenge; descriptions never contain a token.
"""

from __future__ import annotations

from typing import Any

from authlib.consts import default_json_headers
from authlib.oauth2 import OAuth2Error
from flask import current_app

from authserver.oauth.rfc9068 import AccessTokenInfo, has_scope, read_access_token

__all__ = ["BearerChallenge", "read_bearer"]


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
