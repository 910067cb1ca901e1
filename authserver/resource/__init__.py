"""The resource-server kit: validate SMART access tokens and check SMART scopes.

A FHIR server imports this package (it depends on :mod:`authserver.smart`,
:mod:`authserver.jose`, :mod:`authserver.access_tokens` and ``requests`` only; the Flask
decorator in :mod:`authserver.resource.flask` imports Flask when used):

- :class:`TokenValidator` — issuer -> discovery -> ``jwks_uri``; key set cached and fetched
  again on an unknown ``kid``; checks ``typ``, ``iss``, ``aud``, ``exp``, ``nbf`` (RFC 9068
  §4) with a small leeway; optional :class:`Introspection` mode (RFC 7662) for immediate
  revocation.
- :meth:`AccessToken.access` -> :class:`Access` — may the token do interaction c/r/u/d/s on a
  resource type with these search parameters (SMART v1 and v2 scopes, granular
  ``?category=`` scopes, ``patient/`` vs ``user/`` vs ``system/`` compartments), and
  :meth:`Access.permits` for each resource.
- :func:`require_smart` — the same as a Flask view decorator.

SMART App Launch 2.2: https://hl7.org/fhir/smart-app-launch/
"""

from authserver.resource.access import Access, Rule, decide, patient_of
from authserver.resource.errors import (
    AuthorizationServerUnavailable,
    TokenInvalid,
    bearer_token,
    operation_outcome,
    www_authenticate,
)
from authserver.resource.flask import current_access, current_token, require_smart
from authserver.resource.validator import AccessToken, Introspection, TokenValidator

__all__ = [
    "Access", "AccessToken", "AuthorizationServerUnavailable", "Introspection", "Rule",
    "TokenInvalid", "TokenValidator", "bearer_token", "current_access", "current_token",
    "decide", "operation_outcome", "patient_of", "require_smart", "www_authenticate",
]
