"""The protocol layer: Authlib glue, one module (or package) per specification.

- RFC 6749 OAuth 2.0 (grants, the token endpoint): https://www.rfc-editor.org/rfc/rfc6749
- RFC 7636 PKCE, S256 only: https://www.rfc-editor.org/rfc/rfc7636
- RFC 7523 JWT client assertions (SMART ``private_key_jwt``): https://www.rfc-editor.org/rfc/rfc7523
- RFC 7662 introspection, RFC 7009 revocation, RFC 6750 bearer tokens
- RFC 9068 JWT access tokens, RFC 7591 dynamic registration
- OpenID Connect Core 1.0 and SMART App Launch 2.2: https://hl7.org/fhir/smart-app-launch/

Depends on store/, smart/, keys, jose and Authlib; never on views/ or services/.
"""
