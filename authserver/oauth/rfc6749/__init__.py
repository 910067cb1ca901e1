"""RFC 6749, The OAuth 2.0 Authorization Framework: the three grants this server runs.

https://www.rfc-editor.org/rfc/rfc6749
- :mod:`.authorization_code` (§4.1), with PKCE (RFC 7636), SMART launch and OpenID Connect
  extensions;
- :mod:`.refresh_token` (§6);
- :mod:`.client_credentials` (§4.4), SMART Backend Services.
"""

from authserver.oauth.rfc6749.authorization_code import Authorization, AuthorizationCodeGrant
from authserver.oauth.rfc6749.client_credentials import ClientCredentialsGrant, system_scope
from authserver.oauth.rfc6749.common import CLIENT_AUTH_METHODS
from authserver.oauth.rfc6749.refresh_token import RefreshTokenGrant

__all__ = ["CLIENT_AUTH_METHODS", "Authorization", "AuthorizationCodeGrant",
           "ClientCredentialsGrant", "RefreshTokenGrant", "system_scope"]
