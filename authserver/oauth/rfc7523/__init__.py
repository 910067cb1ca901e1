"""RFC 7523 JWT client authentication, as SMART's asymmetric client authentication profiles it.

- RFC 7523 (JSON Web Token Profile for OAuth 2.0 Client Authentication and Authorization
  Grants), §2.2 and §3: https://www.rfc-editor.org/rfc/rfc7523
- SMART App Launch 2.2, client-confidential-asymmetric (``private_key_jwt``, the client's
  ``jwks_uri``):
  https://hl7.org/fhir/smart-app-launch/client-confidential-asymmetric.html

:mod:`.private_key_jwt` is the client authentication method (the assertion's checks, in
order); :mod:`.jwks_fetcher` fetches and caches the client's JWK Set from its ``jwks_uri``
under one deadline; :mod:`.guarded_socket` is the SSRF guard and the deadline socket it
fetches on.
"""

from __future__ import annotations

from authserver.oauth.rfc7523.guarded_socket import address_allowed
from authserver.oauth.rfc7523.jwks_fetcher import JwksError, JwksFetcher
from authserver.oauth.rfc7523.private_key_jwt import ASSERTION_TYPE, PrivateKeyJWT

__all__ = ["ASSERTION_TYPE", "JwksError", "JwksFetcher", "PrivateKeyJWT", "address_allowed"]
