"""SMART App Launch rules at /authorize, as an Authlib grant extension.

https://hl7.org/fhir/smart-app-launch/app-launch.html#obtain-authorization-code
- ``aud`` is REQUIRED and MUST name a FHIR server this AS protects, else no code.
- ``state`` is REQUIRED (SMART) and echoed exactly.
- ``launch`` (EHR launch) MUST name a live launch context made for that FHIR server.
- Parameters MUST NOT be repeated (RFC 6749 §3.1).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2.rfc6749.errors import InvalidRequestError, InvalidScopeError
from flask import current_app

from authserver import store
from authserver.smart.grammar import Scope, ScopeError, parse_scopes

__all__ = ["SmartAuthorizeRequest", "SmartLaunch", "normalize_aud", "quote_param",
           "check_prompt", "PROMPT_VALUES",
           "MAX_PARAM_LENGTH",
           "smart_style", "smart_style_url", "STYLE_PATH"]

#: Where the SMART style document is served (``smart_style_url``).
STYLE_PATH = "/smart-style.json"

#: Longest accepted value of any /authorize parameter.
MAX_PARAM_LENGTH = 4096


def normalize_aud(aud: str) -> str:
    return aud.strip().rstrip("/")


def quote_param(value: str, limit: int = 64) -> str:
    """``value`` made safe for an ``error_description``: RFC 6749 §4.1.2.1 "Values for the
    error_description parameter MUST NOT include characters outside the set %x20-21 /
    %x23-5B / %x5D-7E" (Authlib raises on them, which would be a 500). Other characters
    become ``?`` (so the result never equals a different valid value) and it is shortened."""
    safe = "".join(c if 0x20 <= ord(c) <= 0x7E and c not in '"\\' else "?"
                   for c in str(value)[:limit])
    return safe + ("..." if len(str(value)) > limit else "")


def smart_style() -> dict[str, str]:
    """The SMART style document, from the ``STYLE_*`` settings.

    https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html#styling
    """
    conf = current_app.config
    return {
        "color_background": conf["STYLE_COLOR_BACKGROUND"],
        "color_highlight": conf["STYLE_COLOR_HIGHLIGHT"],
        "color_text": conf["STYLE_COLOR_TEXT"],
        "font_family_body": conf["STYLE_FONT_FAMILY"],
        "font_family_heading": conf["STYLE_FONT_FAMILY"],
    }


def smart_style_url() -> str:
    """Absolute URL of :func:`smart_style`, versioned by its content. SMART: "EHRs SHALL
    return a new URL value in the smart_style_url launch context parameter if the contents
    of this JSON is changed" — so the URL carries a digest of the document."""
    body = json.dumps(smart_style(), sort_keys=True, separators=(",", ":")).encode()
    version = hashlib.sha256(body).hexdigest()[:12]
    return f"{current_app.config['ISSUER']}{STYLE_PATH}?v={version}"


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

    aud: str
    scopes: list[Scope]
    launch: Any = None  # LaunchContext row for an EHR launch
    extra: dict[str, Any] = field(default_factory=dict)

    def has(self, kind: str) -> bool:
        return any(s.kind == kind for s in self.scopes)

    def raw(self, value: str) -> bool:
        return any(s.raw == value for s in self.scopes)


class SmartLaunch:
    """Grant extension: runs after Authlib validated client, redirect_uri and scope."""

    CAPABILITIES = ("launch-standalone", "authorize-post")

    def __call__(self, grant: Any) -> None:
        grant.register_hook("after_validate_authorization_request_payload", self.validate)

    def validate(self, grant: Any, redirect_uri: str) -> None:
        request = grant.request
        data = request.payload.data
        for key, values in request.payload.datalist.items():
            if len(values) > 1:
                raise InvalidRequestError(f"Multiple '{quote_param(key)}' in request")
            if values and isinstance(values[0], str) and len(values[0]) > MAX_PARAM_LENGTH:
                raise InvalidRequestError(f"'{quote_param(key)}' is too long")
        if not data.get("state"):
            raise InvalidRequestError("Missing 'state'")
        check_prompt(data.get("prompt"), data.get("max_age"))
        aud = data.get("aud") or data.get("resource")
        if not aud:
            raise InvalidRequestError("Missing 'aud'")
        aud = normalize_aud(aud)
        if aud not in current_app.config["FHIR_BASE_URLS"]:
            # SMART: "the EHR SHALL NOT issue a code" for an unknown audience.
            raise InvalidRequestError("'aud' is not a FHIR server this server protects")
        try:
            requested = parse_scopes(data.get("scope") or "")
        except ScopeError as exc:
            raise InvalidScopeError(str(exc)) from None
        allowed = request.client.get_allowed_scope(data.get("scope"))
        scopes = [s for s in requested if s.raw in set((allowed or "").split())]
        if not scopes:
            raise InvalidScopeError("None of the requested scopes is allowed for this client")
        launch_row = None
        launch = data.get("launch")
        if launch:
            launch_row = store.interaction.find_launch(launch)
            if launch_row is None:
                raise InvalidRequestError("'launch' is unknown, expired or already used")
            if launch_row.aud != aud:
                raise InvalidRequestError("'aud' must equal the 'iss' of the launch")
            if launch_row.client_id and launch_row.client_id != request.client.client_id:
                raise InvalidRequestError("'launch' was made for another app")
            if not any(s.kind == "launch" for s in scopes):
                raise InvalidScopeError("An EHR launch needs the 'launch' scope")
        elif any(s.kind == "launch" for s in scopes):
            raise InvalidRequestError("Scope 'launch' needs a 'launch' parameter")
        request.smart = SmartAuthorizeRequest(aud=aud, scopes=scopes, launch=launch_row)
