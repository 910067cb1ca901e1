"""The values a client registration names: how it authenticates at the token endpoint and
which grants it uses (pure: stdlib only, so every layer may import it).

- :class:`AuthMethod`: RFC 7591 §2 ``token_endpoint_auth_method``
  https://www.rfc-editor.org/rfc/rfc7591#section-2, the methods behind SMART App Launch 2.2's
  client types: public (``none``), confidential symmetric
  https://hl7.org/fhir/smart-app-launch/client-confidential-symmetric.html (a secret) and
  confidential asymmetric
  https://hl7.org/fhir/smart-app-launch/client-confidential-asymmetric.html
  (``private_key_jwt``, RFC 7523 https://www.rfc-editor.org/rfc/rfc7523);
- :class:`GrantType`: RFC 7591 §2 ``grant_types``, the RFC 6749 grants this server runs
  (``client_credentials`` for SMART Backend Services
  https://hl7.org/fhir/smart-app-launch/backend-services.html).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["AuthMethod", "GrantType", "INTROSPECT_SCOPE", "SECRET_METHODS"]


class AuthMethod(StrEnum):
    """A client's ``token_endpoint_auth_method``."""

    #: A public app: no client authentication (PKCE protects its code).
    NONE = "none"
    #: The client secret in HTTP Basic (RFC 6749 §2.3.1).
    CLIENT_SECRET_BASIC = "client_secret_basic"
    #: The client secret in the form body (RFC 6749 §2.3.1).
    CLIENT_SECRET_POST = "client_secret_post"
    #: A JWT assertion signed with a key the client registered (``jwks`` or ``jwks_uri``).
    PRIVATE_KEY_JWT = "private_key_jwt"


#: The methods that authenticate with a client secret (the server issues one).
SECRET_METHODS = frozenset({AuthMethod.CLIENT_SECRET_BASIC, AuthMethod.CLIENT_SECRET_POST})


#: The permission to introspect any client's token (RFC 7662, ``oauth/rfc7662.py``): granted
#: only in client_credentials, only to a client an administrator flagged ``can_introspect``;
#: never yielded by registration or consent.
INTROSPECT_SCOPE = "introspect"


class GrantType(StrEnum):
    """A value of a client's ``grant_types``."""

    AUTHORIZATION_CODE = "authorization_code"
    REFRESH_TOKEN = "refresh_token"
    CLIENT_CREDENTIALS = "client_credentials"
