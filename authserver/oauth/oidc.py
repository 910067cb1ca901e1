"""OpenID Connect Core 1.0 as a grant extension: the id_token beside the access token.

https://openid.net/specs/openid-connect-core-1_0.html
- §2 / §3.1.3.6: an id_token when ``openid`` was granted, with ``at_hash`` (the left half of
  the access token's SHA-256); RS256, which SMART clients and Inferno expect.
- §3.1.2.1 ``nonce`` echoed; ``auth_time`` when the request had ``max_age``.
- SMART App Launch 2.2 ``fhirUser`` under the ``fhirUser`` scope; ``name`` / ``email`` under
  ``profile`` / ``email``.

Registered on the authorization-code and refresh grants (oauth/server.py), which run the
grant's ``process_token`` hooks inside the unit of work that issues the tokens, so the claims
introspection repeats (iss, sub, fhirUser) are stored with the grant.
"""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING, Any

from flask import current_app

from authserver import clock
from authserver.oauth import keystore
from authserver.oauth.tokens import fhir_user_url
from authserver.smart.configuration import Features
from authserver.smart.grammar import parse_scopes

if TYPE_CHECKING:
    from authserver.models import Client, Grant, User

__all__ = ["OpenIDConnect", "build_id_token"]


def _at_hash(access_token: str) -> str:
    # OIDC Core §3.1.3.6: left half of the hash of the ASCII access token, base64url.
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


def build_id_token(*, user: User, client: Client, grant: Grant, access_token: str,
                   nonce: str | None, auth_time: int | None) -> tuple[str, dict[str, Any]]:
    conf = current_app.config
    t = clock.now()
    kinds = {s.kind for s in parse_scopes(grant.scope)}
    claims: dict[str, Any] = {
        "iss": conf["ISSUER"],
        "sub": str(user.id),
        "aud": client.client_id,
        "exp": t + conf["ID_TOKEN_LIFETIME"],
        "iat": t,
        "at_hash": _at_hash(access_token),
    }
    if auth_time:
        claims["auth_time"] = auth_time
    if nonce:
        claims["nonce"] = nonce
    if "fhirUser" in kinds and user.fhir_user:
        claims["fhirUser"] = fhir_user_url(user, grant.aud)
    if "profile" in kinds and user.name:
        claims["name"] = user.name
    if "email" in kinds and user.email:
        claims["email"] = user.email
    signer = keystore.get_signer(keystore.ID_TOKEN_ALG)
    return signer.sign(claims, typ="JWT"), claims


class OpenIDConnect:
    """Grant extension: adds ``id_token`` to a token response whose grant holds ``openid``
    and a user (the hook's keywords are what :func:`build_id_token` needs)."""

    FEATURES = Features(
        capabilities={"sso-openid-connect"},
        scopes={"openid", "fhirUser", "profile", "email"},
        claims={"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash",
                "fhirUser", "name", "email"},
        endpoints={"userinfo_endpoint"},
    )

    def __call__(self, grant: Any) -> None:
        grant.register_hook("process_token", self.add_id_token)

    @staticmethod
    def add_id_token(grant: Any, token: dict[str, Any], *, user: User | None, client: Client,
                     grant_row: Grant, nonce: str | None = None,
                     auth_time: int | None = None) -> None:
        kinds = {s.kind for s in parse_scopes(token["scope"])}
        if "openid" not in kinds or user is None:
            return
        token["id_token"], claims = build_id_token(
            user=user, client=client, grant=grant_row, access_token=token["access_token"],
            nonce=nonce, auth_time=auth_time)
        grant_row.id_token_claims = {k: claims[k] for k in ("iss", "sub", "fhirUser")
                                     if k in claims}
