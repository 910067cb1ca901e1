"""SMART on FHIR scope grammar: parse (v1, v2, granular), format, narrow, subset.

Specifications implemented here:

* SMART App Launch 2.2.0, "Scopes and Launch Context"
  https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html, sections
  "Scopes for requesting FHIR Resources" (#scopes-for-requesting-fhir-resources: v2
  ``.cruds`` permissions, v1 ``read``/``write``/``*`` compatibility, wildcard types),
  "Finer-grained resource constraints using search parameters"
  (#finer-grained-resource-constraints-using-search-parameters: ``?param=value``),
  "Scopes for requesting context data" (#scopes-for-requesting-context-data: ``launch``,
  ``launch/<type>`` with optional ``?role=``), "Scopes for requesting identity data"
  (#scopes-for-requesting-identity-data) and "Scopes for requesting a refresh token"
  (#scopes-for-requesting-a-refresh-token).
* RFC 6749 §3.3 (OAuth 2.0 access token scope syntax)
  https://www.rfc-editor.org/rfc/rfc6749#section-3.3, and §6 (a refresh may only narrow).
* US Core category code systems (Condition and Observation categories) and the ONC
  §170.315(g)(10) category policy data (:data:`GRANULAR_CATEGORIES`) that the consent page
  (:mod:`authserver.smart.consent`) offers.

The plain-language consent wording is :mod:`authserver.smart.consent`; the resource-server
access decisions are :mod:`authserver.smart.access`.

This module is pure: standard library only, no I/O, no framework imports.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "CONDITION_CATEGORY_SYSTEM",
    "CONTEXTS",
    "GRANULAR_CATEGORIES",
    "MAX_SCOPE_TEXT_LENGTH",
    "MAX_SCOPES",
    "OBSERVATION_CATEGORY_SYSTEM",
    "PERMISSION_ORDER",
    "US_CORE_CATEGORY_SYSTEM",
    "US_CORE_CONDITION_CATEGORY_SYSTEM",
    "Params",
    "ResourceScope",
    "Scope",
    "ScopeError",
    "format_scopes",
    "is_subset",
    "launch_base",
    "narrow",
    "parse_scope",
    "parse_scopes",
    "quote_token",
    "scope_set",
]

# ---------------------------------------------------------------------------
# Limits and constants
# ---------------------------------------------------------------------------

#: A ``scope`` parameter longer than this is rejected outright (before splitting).
MAX_SCOPE_TEXT_LENGTH = 8000
#: A ``scope`` parameter with more tokens than this is rejected.
MAX_SCOPES = 200

#: Granular-scope query parameters: ``(name, value)`` pairs, request order, values verbatim.
Params = tuple[tuple[str, str], ...]

CONTEXTS = ("patient", "user", "system")
PERMISSION_ORDER = "cruds"

CONDITION_CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-category"
US_CORE_CONDITION_CATEGORY_SYSTEM = "http://hl7.org/fhir/us/core/CodeSystem/condition-category"
OBSERVATION_CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
US_CORE_CATEGORY_SYSTEM = "http://hl7.org/fhir/us/core/CodeSystem/us-core-category"

#: Category sub-scopes (``system|code``) offered on the consent page beneath a
#: resource-level Condition / Observation scope, as optional narrowing (docs/consent.md).
#: Order follows the ONC (g)(10) CCG list.
#:
#: "Clinical Test": US Core 5 had ``us-core-observation-category|clinical-test``; US Core 6+
#: dropped that code system and the US Core Clinical Result Observation Category value set
#: uses ``observation-category|procedure`` for non-lab, non-imaging clinical tests (this is
#: also the code the ONC (g)(10) test kit grants for US Core 6/7). There is no
#: ``us-core-category|clinical-test`` code, so we use ``observation-category|procedure``.
GRANULAR_CATEGORIES: Mapping[str, tuple[str, ...]] = {
    "Condition": (
        f"{CONDITION_CATEGORY_SYSTEM}|encounter-diagnosis",
        f"{CONDITION_CATEGORY_SYSTEM}|problem-list-item",
        f"{US_CORE_CONDITION_CATEGORY_SYSTEM}|health-concern",
    ),
    "Observation": (
        f"{OBSERVATION_CATEGORY_SYSTEM}|procedure",
        f"{OBSERVATION_CATEGORY_SYSTEM}|laboratory",
        f"{OBSERVATION_CATEGORY_SYSTEM}|social-history",
        f"{US_CORE_CATEGORY_SYSTEM}|sdoh",
        f"{OBSERVATION_CATEGORY_SYSTEM}|survey",
        f"{OBSERVATION_CATEGORY_SYSTEM}|vital-signs",
    ),
}

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN_RE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
_RESOURCE_TYPE_RE = re.compile(r"[A-Z][A-Za-z]+")
# "Valid suffixes are a subset of the in-order string `.cruds`."
_V2_PERMISSIONS_RE = re.compile(r"c?r?u?d?s?")
# SMART 1.0 suffixes and the v2 meaning the spec gives them: "SHOULD process v1 scopes
# with the following semantics in v2: .read => .rs, .write => .cud, .* => .cruds".
_V1_PERMISSIONS = {"read": "rs", "write": "cud", "*": "cruds"}
# "When specifying resource types, convert the type names to *all lowercase*".
_LAUNCH_CONTEXT_RE = re.compile(r"launch/(?P<type>[a-z]+)(?:\?role=(?P<role>[^&]+))?")
# Shape of a resource scope with some other context (e.g. a typo such as `patinet/...`).
_RESOURCE_LIKE_RE = re.compile(r"[A-Za-z]+/(?:[A-Za-z]+|\*)\.(?:read|write|\*|[cruds]+)(?:\?.*)?")

_SIMPLE_KINDS = {
    "openid": "openid",
    "fhirUser": "fhirUser",
    "profile": "profile",
    "email": "email",
    "offline_access": "offline_access",
    "online_access": "online_access",
}


class ScopeError(ValueError):
    """A scope string is malformed. ``token`` is the offending scope-token, if any."""

    def __init__(self, message: str, token: str | None = None) -> None:
        super().__init__(message)
        self.token = token


def quote_token(token: str) -> str:
    """``token`` quoted for an error message (also used by :mod:`authserver.smart.access`)."""
    # JSON quoting escapes control characters, quotes and backslashes, so the message is
    # safe to log; very long tokens are shortened.
    if len(token) > 120:
        token = token[:120] + "..."
    return json.dumps(token)


def _invalid(token: str, reason: str) -> ScopeError:
    return ScopeError(f"invalid scope {quote_token(token)}: {reason}", token)


# ---------------------------------------------------------------------------
# Data model
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ResourceScope:
    """A FHIR resource scope such as ``patient/Observation.rs?category=...``."""

    context: str  # 'patient' | 'user' | 'system'
    resource_type: str  # FHIR type name or '*'
    permissions: str  # canonical, in-order subset of 'cruds'
    version: int  # 1 (read/write/*) or 2 (cruds letters)
    params: Params  # granular constraints, request order, values verbatim
    raw: str

    def to_v2(self) -> str:
        """The same scope written in SMART v2 syntax (``.read`` becomes ``.rs``)."""
        text = f"{self.context}/{self.resource_type}.{self.permissions}"
        if self.params:
            text += "?" + "&".join(f"{name}={value}" for name, value in self.params)
        return text

    def covers(self, other: ResourceScope) -> bool:
        """True if every access ``other`` grants is also granted by this scope."""
        if self.context != other.context:
            return False
        if self.resource_type != "*" and self.resource_type != other.resource_type:
            return False
        if not set(other.permissions) <= set(self.permissions):
            return False
        # A constraint narrows access: the coverer's constraints must all apply to `other`.
        return set(self.params) <= set(other.params)


@dataclass(frozen=True)
class Scope:
    """One scope-token. ``resource`` is set only when ``kind == 'resource'``.

    kind: 'resource', 'launch', 'launch_context', 'openid', 'fhirUser', 'profile',
    'email', 'offline_access', 'online_access' or 'other'.
    """

    raw: str
    kind: str
    resource: ResourceScope | None = None


# ---------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------


def _parse_params(token: str, query: str) -> Params:
    params: list[tuple[str, str]] = []
    # "add a query string suffix ... starting with `?` and followed by a series of
    # `param=value` items separated by `&`."
    for item in query.split("&"):
        name, eq, value = item.partition("=")
        if not eq or not name or not value:
            raise _invalid(
                token, f"parameter {quote_token(item)} is not of the form name=value"
            )
        params.append((name, value))
    return tuple(params)


def _parse_resource(token: str) -> ResourceScope:
    context, _, rest = token.partition("/")
    head, question, query = rest.partition("?")
    resource_type, dot, perm = head.partition(".")
    if not dot:
        raise _invalid(token, "expected <context>/<ResourceType>.<permissions>")
    if resource_type != "*" and not _RESOURCE_TYPE_RE.fullmatch(resource_type):
        raise _invalid(token, "resource type must be a FHIR type name such as Observation, or *")
    if perm in _V1_PERMISSIONS:
        version, permissions = 1, _V1_PERMISSIONS[perm]
    elif perm and _V2_PERMISSIONS_RE.fullmatch(perm):
        version, permissions = 2, perm
    else:
        # "Scope requests with undefined or out of order interactions MAY be ignored,
        # replaced with server default scopes, or rejected. ... This policy is to prevent
        # misinterpretation of scopes" -- we reject, never guess (`.rc`, `.dus`, `.xyz`).
        raise _invalid(
            token,
            "permissions must be read, write, * or a non-empty in-order subset of cruds",
        )
    params: Params = ()
    if question:
        if version == 1:
            raise _invalid(token, "search parameters are only allowed on v2 (cruds) scopes")
        if not query:
            raise _invalid(token, "nothing after '?'")
        params = _parse_params(token, query)
    return ResourceScope(context, resource_type, permissions, version, params, token)


def parse_scope(s: str) -> Scope:
    """Parse one scope-token. Raises ScopeError if it is malformed.

    SMART App Launch #scopes-for-requesting-fhir-resources (resource scopes, v1 and v2),
    #finer-grained-resource-constraints-using-search-parameters (``?param=value``),
    #scopes-for-requesting-context-data (``launch``, ``launch/<type>?role=``).
    """
    # RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
    if not _SCOPE_TOKEN_RE.fullmatch(s):
        if not s:
            raise ScopeError("invalid scope: empty scope-token", s)
        raise _invalid(s, "contains a character not allowed in a scope (RFC 6749 section 3.3)")
    if s in _SIMPLE_KINDS:
        return Scope(s, _SIMPLE_KINDS[s])
    if s == "launch":
        return Scope(s, "launch")
    if s.startswith("launch/"):
        # "Each requested scope can include at most one role" -- `[^&]+` admits one.
        if not _LAUNCH_CONTEXT_RE.fullmatch(s):
            raise _invalid(s, "expected launch/<lowercase resource type>, optionally ?role=<uri>")
        return Scope(s, "launch_context")
    context = s.partition("/")[0]
    if "/" in s and context in CONTEXTS:
        return Scope(s, "resource", _parse_resource(s))
    if _RESOURCE_LIKE_RE.fullmatch(s):
        # Fail loudly on e.g. `patinet/Observation.rs` rather than treating it as an
        # unknown (vendor) scope that would be silently dropped.
        raise _invalid(
            s, f"unknown context {quote_token(context)}; expected patient, user or system"
        )
    return Scope(s, "other")


def parse_scopes(text: str) -> list[Scope]:
    """Parse a space-separated ``scope`` value (RFC 6749 §3.3): a new list over
    :func:`scope_set`'s immutable value."""
    return list(scope_set(text))


@lru_cache(maxsize=1024)
def scope_set(text: str) -> tuple[Scope, ...]:
    """The scopes of a ``scope`` value, parsed once per process and shared: the value is
    immutable (frozen dataclasses, tuples), and the same few strings (an app's registration,
    a grant's scope, a request's) come back at every step of every authorization and token
    request. A malformed value raises :class:`ScopeError` every time (errors are not cached).

    Runs of spaces and leading/trailing spaces are tolerated; exact duplicates are dropped
    (first kept). Only SP separates tokens: any other whitespace is an invalid character.
    """
    if len(text) > MAX_SCOPE_TEXT_LENGTH:
        raise ScopeError(f"scope is too long (more than {MAX_SCOPE_TEXT_LENGTH} characters)")
    # RFC 6749 §3.3: scope = scope-token *( SP scope-token )
    tokens = [token for token in text.split(" ") if token]
    if len(tokens) > MAX_SCOPES:
        raise ScopeError(f"too many scopes (more than {MAX_SCOPES})")
    seen: set[str] = set()
    scopes: list[Scope] = []
    for token in tokens:
        if token in seen:
            continue
        seen.add(token)
        scopes.append(parse_scope(token))
    return tuple(scopes)


def format_scopes(scopes: Iterable[Scope]) -> str:
    """Space-join the scopes' raw strings."""
    return " ".join(scope.raw for scope in scopes)


# ---------------------------------------------------------------------------
# Narrowing
# ---------------------------------------------------------------------------


def launch_base(raw: str) -> str:
    """A launch context scope without its ``?role=`` (``launch/list?role=x`` -> ``launch/list``)."""
    return raw.partition("?")[0]


def narrow(requested: list[Scope], allowed: list[Scope]) -> list[Scope]:
    """Keep the requested scopes that the client's registration allows.

    A resource scope is kept (as requested) when some allowed resource scope covers it;
    any other scope is kept when the same string is allowed (launch context scopes are
    compared without their ``?role=``). Everything else is dropped silently.
    Coverage follows SMART App Launch #scope-equivalence and #wildcard-scopes.
    """
    allowed_resources = [a.resource for a in allowed if a.resource is not None]
    allowed_raw = {a.raw for a in allowed}
    allowed_launch = {launch_base(a.raw) for a in allowed if a.kind == "launch_context"}
    kept: list[Scope] = []
    for scope in requested:
        if scope.resource is not None:
            if any(a.covers(scope.resource) for a in allowed_resources):
                kept.append(scope)
        elif scope.kind == "launch_context":
            if launch_base(scope.raw) in allowed_launch:
                kept.append(scope)
        elif scope.raw in allowed_raw:
            kept.append(scope)
    return kept


def is_subset(requested_text: str, granted_text: str) -> bool:
    """True if every requested scope equals or is covered by a granted scope.

    For refresh requests (RFC 6749 §6: the requested scope "MUST NOT include any scope not
    originally granted"). Non-resource scopes must match exactly. Raises ScopeError if
    either text is malformed.
    """
    requested = parse_scopes(requested_text)
    granted = parse_scopes(granted_text)
    granted_raw = {g.raw for g in granted}
    granted_resources = [g.resource for g in granted if g.resource is not None]
    for scope in requested:
        if scope.raw in granted_raw:
            continue
        if scope.resource is not None and any(g.covers(scope.resource) for g in granted_resources):
            continue
        return False
    return True
