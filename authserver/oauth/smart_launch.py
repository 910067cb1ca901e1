"""SMART App Launch rules at /authorize, as an Authlib grant extension.

https://hl7.org/fhir/smart-app-launch/app-launch.html#obtain-authorization-code
- ``aud`` is REQUIRED and MUST name a FHIR server this AS protects, else no code.
- ``state`` is REQUIRED (SMART) and echoed exactly.
- ``launch`` (EHR launch) MUST name a live launch context made for that FHIR server.
- Parameters MUST NOT be repeated (RFC 6749 §3.1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2.rfc6749.errors import InvalidRequestError, InvalidScopeError
from flask import current_app

from authserver import store
from authserver.oauth.wire import quote_param, safe_description
from authserver.smart.configuration import Features
from authserver.smart.grammar import Scope, ScopeError, parse_scopes
from authserver.urls import normalize_aud

#: A named /authorize check: reads the request, records what it established, or raises.
Check = Callable[[Any, "SmartAuthorizeRequest"], None]

__all__ = ["Check", "SmartAuthorizeRequest", "SmartLaunch", "check_prompt", "implements",
           "PROMPT_VALUES", "MAX_PARAM_LENGTH"]

#: Longest accepted value of any /authorize parameter.
MAX_PARAM_LENGTH = 4096


#: OpenID Connect Core §3.1.2.1 ``prompt`` values this server honours.
PROMPT_VALUES = ("none", "login", "consent", "select_account")


def check_prompt(prompt: Any, max_age: Any) -> None:
    """OIDC Core §3.1.2.1: ``prompt`` is a space-delimited list of known values, and "If
    this parameter contains none with any other value, an error is returned"; ``max_age``
    is a non-negative whole number of seconds."""
    if prompt is not None:
        values = str(prompt).split(" ")
        unknown = [v for v in values if v not in PROMPT_VALUES]
        if unknown:
            raise InvalidRequestError(f"Unsupported 'prompt' value '{quote_param(unknown[0])}'")
        if "none" in values and len(set(values)) > 1:
            raise InvalidRequestError("'prompt=none' cannot be combined with other values")
    if max_age is not None and not (isinstance(max_age, str) and max_age.isascii()
                                    and max_age.isdigit() and len(max_age) <= 10):
        raise InvalidRequestError("'max_age' must be a whole number of seconds")


@dataclass
class SmartAuthorizeRequest:
    """What the SMART checks established about a valid /authorize request."""

    aud: str = ""
    scopes: list[Scope] = field(default_factory=list)
    launch: Any = None  # LaunchContext row for an EHR launch


def implements(**features: set[str]) -> Callable[[Check], Check]:
    """Declare the discovery features a check implements (unioned into the server's)."""
    def mark(check: Check) -> Check:
        check.features = Features(**features)  # type: ignore[attr-defined]
        return check
    return mark


def check_parameters(request: Any, found: SmartAuthorizeRequest) -> None:
    """RFC 6749 §3.1: parameters "MUST NOT be included more than once"; none longer than
    :data:`MAX_PARAM_LENGTH`."""
    for key, values in request.payload.datalist.items():
        if len(values) > 1:
            raise InvalidRequestError(f"Multiple '{quote_param(key)}' in request")
        if values and isinstance(values[0], str) and len(values[0]) > MAX_PARAM_LENGTH:
            raise InvalidRequestError(f"'{quote_param(key)}' is too long")


def check_state(request: Any, found: SmartAuthorizeRequest) -> None:
    """SMART: ``state`` is REQUIRED (and echoed exactly)."""
    if not request.payload.data.get("state"):
        raise InvalidRequestError("Missing 'state'")


@implements(prompt_values=set(PROMPT_VALUES))
def check_prompt_values(request: Any, found: SmartAuthorizeRequest) -> None:
    """OIDC Core §3.1.2.1 ``prompt`` and ``max_age`` (honoured by services/authorize_flow.py)."""
    data = request.payload.data
    check_prompt(data.get("prompt"), data.get("max_age"))


def check_audience(request: Any, found: SmartAuthorizeRequest) -> None:
    """SMART: ``aud`` (or RFC 8707 ``resource``) is REQUIRED and names a FHIR server this
    server protects: for an unknown audience "the EHR SHALL NOT issue a code"."""
    data = request.payload.data
    aud = data.get("aud") or data.get("resource")
    if not aud:
        raise InvalidRequestError("Missing 'aud'")
    aud = normalize_aud(aud)
    if aud not in current_app.config["FHIR_BASE_URLS"]:
        raise InvalidRequestError("'aud' is not a FHIR server this server protects")
    found.aud = aud


@implements(capabilities={"permission-patient", "permission-user", "permission-v1",
                          "permission-v2", "permission-offline", "permission-online"},
            scopes={"launch", "launch/patient", "offline_access", "online_access"})
def check_scope(request: Any, found: SmartAuthorizeRequest) -> None:
    """The requested scopes in the SMART grammar, narrowed to the app's registration
    (RFC 6749 §3.3); ``invalid_scope`` when nothing is left."""
    data = request.payload.data
    try:
        requested = parse_scopes(data.get("scope") or "")
    except ScopeError as exc:
        raise InvalidScopeError(safe_description(str(exc))) from None
    allowed = set((request.client.get_allowed_scope(data.get("scope")) or "").split())
    found.scopes = [s for s in requested if s.raw in allowed]
    if not found.scopes:
        raise InvalidScopeError("None of the requested scopes is allowed for this client")


@implements(capabilities={"launch-ehr", "context-ehr-patient", "context-ehr-encounter",
                          "context-banner", "context-style"})
def check_launch(request: Any, found: SmartAuthorizeRequest) -> None:
    """SMART EHR launch: ``launch`` names a live launch context made for this FHIR server
    (and, when bound, for this app), and comes with the ``launch`` scope; the scope never
    comes without it."""
    launch = request.payload.data.get("launch")
    wants_launch = any(s.kind == "launch" for s in found.scopes)
    if not launch:
        if wants_launch:
            raise InvalidRequestError("Scope 'launch' needs a 'launch' parameter")
        return
    row = store.interaction.find_launch(launch)
    if row is None:
        raise InvalidRequestError("'launch' is unknown, expired or already used")
    if row.aud != found.aud:
        raise InvalidRequestError("'aud' must equal the 'iss' of the launch")
    if row.client_id and row.client_id != request.client.client_id:
        raise InvalidRequestError("'launch' was made for another app")
    if not wants_launch:
        raise InvalidScopeError("An EHR launch needs the 'launch' scope")
    found.launch = row


class SmartLaunch:
    """Grant extension: runs after Authlib validated client, redirect_uri and scope, then
    the SMART checks in this order, each raising one specific error."""

    CHECKS: tuple[Check, ...] = (check_parameters, check_state, check_prompt_values,
                                 check_audience, check_scope, check_launch)
    FEATURES = Features.union(
        Features(capabilities={"launch-standalone", "authorize-post",
                               "context-standalone-patient"},
                 scopes={"patient/*.rs", "patient/*.read", "user/*.rs", "user/*.read"}),
        *(getattr(c, "features", Features()) for c in CHECKS))

    def __call__(self, grant: Any) -> None:
        grant.register_hook("after_validate_authorization_request_payload", self.validate)

    def validate(self, grant: Any, redirect_uri: str) -> None:
        found = SmartAuthorizeRequest()
        for check in self.CHECKS:
            check(grant.request, found)
        grant.request.smart = found
