"""The OpenID Connect UserInfo endpoint.

OpenID Connect Core 1.0 §5.3 https://openid.net/specs/openid-connect-core-1_0.html#UserInfo
(claims of the user the access token was issued for; ``sub`` always, ``name`` under
``profile``, ``email`` under ``email``) and SMART ``fhirUser`` under the ``fhirUser`` scope.
Errors are RFC 6750 §3 challenges https://www.rfc-editor.org/rfc/rfc6750#section-3.
"""

from __future__ import annotations

from typing import Any

from authlib.consts import default_json_headers

from authserver import store
from authserver.oauth.rfc6750 import BearerChallenge, read_bearer

__all__ = ["userinfo_response"]


def _claims(info: Any) -> dict[str, Any]:
    scopes = set(info.scopes)
    user = None
    if info.grant is not None and info.grant.user_id is not None:
        user = store.accounts.get_user(info.grant.user_id)
    if user is None:
        raise BearerChallenge("invalid_token", "The access token was not issued for a user")
    # OIDC Core §5.3.2: "The sub Claim in the UserInfo Response MUST be verified to exactly
    # match the sub Claim in the ID Token" -- both are the user's id.
    body: dict[str, Any] = {"sub": str(user.id)}
    if "fhirUser" in scopes and info.claims.get("fhirUser"):
        body["fhirUser"] = info.claims["fhirUser"]
    if "profile" in scopes and user.name:
        body["name"] = user.name
    if "email" in scopes and user.email:
        body["email"] = user.email
    return body


def userinfo_response(authorization: str | None) -> tuple[int, dict[str, Any], list]:
    """(status, body, headers) for a UserInfo request with this ``Authorization`` header."""
    try:
        # OIDC Core §5.3.1: the access token is one "obtained through OpenID Connect
        # Authentication" -- it must carry the openid scope.
        info = read_bearer(authorization, required_scope="openid")
        body = _claims(info)
    except BearerChallenge as exc:
        return exc()
    return 200, body, list(default_json_headers)
