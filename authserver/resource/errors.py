"""What a resource server answers when a request is not authorized.

- RFC 6750 §3 https://www.rfc-editor.org/rfc/rfc6750#section-3 (``WWW-Authenticate: Bearer``
  challenges; ``invalid_token`` 401, ``insufficient_scope`` 403; no error code when the
  request carried no token at all).
- FHIR R4 OperationOutcome https://hl7.org/fhir/R4/operationoutcome.html (the body FHIR
  servers give with an error status).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "TokenInvalid", "AuthorizationServerUnavailable", "bearer_token", "www_authenticate",
    "operation_outcome",
]

#: RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
#: Longest bearer token accepted (our JWTs are well under 2 kB).
MAX_TOKEN_LENGTH = 8192


class TokenInvalid(Exception):
    """The request has no usable access token: answer 401 with a Bearer challenge.

    ``error`` is None when no token was sent (RFC 6750 §3.1: then no error code is given).
    Messages never contain the token.
    """

    status_code = 401

    def __init__(self, description: str, error: str | None = "invalid_token") -> None:
        super().__init__(description)
        self.description = description
        self.error = error


class AuthorizationServerUnavailable(Exception):
    """Discovery, the key set or introspection could not be fetched: answer 503 (never
    treat this as an invalid token, which would make apps throw their tokens away)."""

    status_code = 503


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer`` header; :class:`TokenInvalid` otherwise."""
    scheme, _, value = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise TokenInvalid("An access token is required", error=None)
    value = value.strip()
    if len(value) > MAX_TOKEN_LENGTH or not _B64TOKEN.fullmatch(value):
        raise TokenInvalid("The access token is malformed")
    return value


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "").replace('"', "") + '"'


def www_authenticate(realm: str | None = None, error: str | None = None,
                     description: str | None = None, scope: str | None = None) -> str:
    """A ``WWW-Authenticate: Bearer`` challenge (RFC 6750 §3)."""
    parts = []
    if realm:
        parts.append(f"realm={_quoted(realm)}")
    if error:
        parts.append(f"error={_quoted(error)}")
        if description:
            parts.append(f"error_description={_quoted(description)}")
    if scope:
        parts.append(f"scope={_quoted(scope)}")
    return "Bearer" + (" " + ", ".join(parts) if parts else "")


#: OperationOutcome issue codes for HTTP statuses (http://hl7.org/fhir/issue-type).
ISSUE_CODES = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found",
               405: "not-supported", 503: "transient"}


def operation_outcome(status: int, diagnostics: str, *, severity: str = "error") -> dict[str, Any]:
    """A FHIR R4 OperationOutcome for an error status."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": ISSUE_CODES.get(status, "processing"),
                   "diagnostics": diagnostics}],
    }
