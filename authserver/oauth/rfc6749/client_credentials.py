"""The client-credentials grant (RFC 6749 §4.4) for SMART Backend Services.

- RFC 6749 §4.4 (client credentials grant) https://www.rfc-editor.org/rfc/rfc6749#section-4.4
- SMART App Launch 2.2, Backend Services
  https://hl7.org/fhir/smart-app-launch/backend-services.html

SMART asks backend services to authenticate with ``private_key_jwt``; a client registered
explicitly for ``client_credentials`` with a secret method (internal services) is accepted
too. Only ``system/`` scopes are granted, narrowed to what the client registered: each
requested scope the registration covers is kept as requested, the others are dropped, and
the request fails with ``invalid_scope`` only when nothing is left (RFC 6749 §3.3 lets the
server grant less than asked; the ``scope`` in the response says exactly what was granted,
as on the authorization-code path). No refresh token; ``sub`` is the client id; nothing is
written to the database (see :func:`authserver.oauth.tokens.issue_client_credentials_token`).
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import (
    InvalidRequestError,
    InvalidScopeError,
)
from flask import current_app

from authserver.oauth.tokens import issue_client_credentials_token
from authserver.oauth.wire import safe_description
from authserver.smart.client_types import INTROSPECT_SCOPE, AuthMethod, GrantType
from authserver.smart.configuration import Features
from authserver.smart.grammar import Scope, ScopeError, format_scopes, narrow, scope_set
from authserver.urls import normalize_aud

__all__ = ["ClientCredentialsGrant", "system_scope"]




def system_scope(requested: str | None, registered: str, *, can_introspect: bool = False
                 ) -> str:
    """The granted scope: requested ``system/`` scopes the registration covers, and
    ``introspect`` when an administrator lets this client introspect others' tokens.

    Raises ``invalid_scope`` when ``scope`` is missing or malformed or nothing is left.
    """
    if not requested:
        # RFC 6749 §3.3: without a default the server MUST fail the request "indicating an
        # invalid scope"; SMART Backend Services: scope is REQUIRED.
        raise InvalidScopeError("Missing 'scope': request the system/ scopes you need")
    try:
        asked = [s for s in scope_set(requested)
                 if s.resource is not None and s.resource.context == "system"]
        kept = narrow(asked, list(scope_set(registered)))
        if can_introspect and INTROSPECT_SCOPE in requested.split(" "):
            kept.append(Scope(INTROSPECT_SCOPE, "other"))
    except ScopeError as exc:
        raise InvalidScopeError(safe_description(str(exc))) from None
    if not kept:
        raise InvalidScopeError(
            "None of the requested scopes is a 'system/' scope registered for this client")
    return format_scopes(kept)


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    FEATURES = Features(grant_types={GrantType.CLIENT_CREDENTIALS.value},
                        scopes={"system/*.rs", "system/*.read"})
    #: SMART Backend Services authenticate with private_key_jwt (listed first: it is the
    #: expected one); secret methods only reach clients registered with them.
    TOKEN_ENDPOINT_AUTH_METHODS = [AuthMethod.PRIVATE_KEY_JWT.value,
                                   AuthMethod.CLIENT_SECRET_BASIC.value,
                                   AuthMethod.CLIENT_SECRET_POST.value]

    def validate_requested_scope(self) -> None:
        """Authlib's hook, run by its ``validate_token_request`` once the client is
        authenticated and allowed the grant type: the granted ``system/`` scope and the
        audience the token is for."""
        client = self.request.client
        self.request.smart_scope = system_scope(
            self.request.payload.scope, client.row.scope,
            can_introspect=bool(getattr(client.row, "can_introspect", False)))
        self.request.smart_aud = self._audience()

    def _audience(self) -> str:
        """The FHIR server the token is for: ``aud`` (or RFC 8707 ``resource``) when sent,
        which must be a FHIR base this server protects; else the default one."""
        data = self.request.payload.data
        asked = data.get("aud") or data.get("resource")
        bases = current_app.config["FHIR_BASE_URLS"]
        if not asked:
            return bases[0]
        aud = normalize_aud(str(asked))
        if aud not in bases:
            raise InvalidRequestError("'aud' is not a FHIR server this server protects")
        return aud

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        # RFC 6749 §4.4.3: "A refresh token SHOULD NOT be included."
        token = issue_client_credentials_token(
            client_id=self.request.client.client_id, scope=self.request.smart_scope,
            aud=self.request.smart_aud)
        return 200, token, self.TOKEN_RESPONSE_HEADER
