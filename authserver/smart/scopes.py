"""SMART on FHIR scopes: parse, narrow, explain for consent, and check access.

Specifications implemented here:

* SMART App Launch 2.2.0, "Scopes and Launch Context"
  https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html
  (v2 ``.cruds`` permissions, v1 ``read``/``write``/``*`` compatibility, granular
  ``?param=value`` constraints, launch context scopes with optional ``?role=``).
* RFC 6749 §3.3 (OAuth 2.0 access token scope syntax)
  https://www.rfc-editor.org/rfc/rfc6749#section-3.3
* ONC §170.315(g)(10) Certification Companion Guide: for a requested resource-level
  Condition / Observation scope the consent UI must offer the sub-resource (category)
  scopes https://www.healthit.gov/test-method/standardized-api-patient-and-population-services
* US Core category code systems (Condition and Observation categories).

This module is pure: standard library only, no I/O, no framework imports.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "CONDITION_CATEGORY_SYSTEM",
    "GRANULAR_CATEGORIES",
    "MAX_SCOPE_TEXT_LENGTH",
    "MAX_SCOPES",
    "OBSERVATION_CATEGORY_SYSTEM",
    "US_CORE_CATEGORY_SYSTEM",
    "US_CORE_CONDITION_CATEGORY_SYSTEM",
    "AccessDecision",
    "ConsentItem",
    "Params",
    "ResourceScope",
    "Scope",
    "ScopeError",
    "check_access",
    "consent_items",
    "describe",
    "format_scopes",
    "granted_from_choice",
    "is_subset",
    "narrow",
    "parse_scope",
    "parse_scopes",
    "previously_chosen",
    "resource_matches",
    "search_satisfies",
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
# US Core 5.0.1 only; replaced in US Core 6+ (see GRANULAR_CATEGORIES). Described, not offered.
_US_CORE_5_OBSERVATION_CATEGORY_SYSTEM = (
    "http://hl7.org/fhir/us/core/CodeSystem/us-core-observation-category"
)

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

_INTERACTIONS = {
    "c": "c",
    "r": "r",
    "u": "u",
    "d": "d",
    "s": "s",
    "create": "c",
    "read": "r",
    "vread": "r",
    "update": "u",
    "patch": "u",
    "delete": "d",
    "search": "s",
}


class ScopeError(ValueError):
    """A scope string is malformed. ``token`` is the offending scope-token, if any."""

    def __init__(self, message: str, token: str | None = None) -> None:
        super().__init__(message)
        self.token = token


def _quote(token: str) -> str:
    # JSON quoting escapes control characters, quotes and backslashes, so the message is
    # safe to log; very long tokens are shortened.
    if len(token) > 120:
        token = token[:120] + "..."
    return json.dumps(token)


def _invalid(token: str, reason: str) -> ScopeError:
    return ScopeError(f"invalid scope {_quote(token)}: {reason}", token)


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
            raise _invalid(token, f"parameter {_quote(item)} is not of the form name=value")
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
    """Parse one scope-token. Raises ScopeError if it is malformed."""
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
        raise _invalid(s, f"unknown context {_quote(context)}; expected patient, user or system")
    return Scope(s, "other")


def parse_scopes(text: str) -> list[Scope]:
    """Parse a space-separated ``scope`` value (RFC 6749 §3.3).

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
    return scopes


def format_scopes(scopes: Iterable[Scope]) -> str:
    """Space-join the scopes' raw strings."""
    return " ".join(scope.raw for scope in scopes)


def _as_scopes(scopes: Iterable[Scope | str] | str) -> list[Scope]:
    if isinstance(scopes, str):
        return parse_scopes(scopes)
    return [s if isinstance(s, Scope) else parse_scope(s) for s in scopes]


# ---------------------------------------------------------------------------
# Narrowing
# ---------------------------------------------------------------------------


def _launch_base(raw: str) -> str:
    return raw.partition("?")[0]


def narrow(requested: list[Scope], allowed: list[Scope]) -> list[Scope]:
    """Keep the requested scopes that the client's registration allows.

    A resource scope is kept (as requested) when some allowed resource scope covers it;
    any other scope is kept when the same string is allowed (launch context scopes are
    compared without their ``?role=``). Everything else is dropped silently.
    """
    allowed_resources = [a.resource for a in allowed if a.resource is not None]
    allowed_raw = {a.raw for a in allowed}
    allowed_launch = {_launch_base(a.raw) for a in allowed if a.kind == "launch_context"}
    kept: list[Scope] = []
    for scope in requested:
        if scope.resource is not None:
            if any(a.covers(scope.resource) for a in allowed_resources):
                kept.append(scope)
        elif scope.kind == "launch_context":
            if _launch_base(scope.raw) in allowed_launch:
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


# ---------------------------------------------------------------------------
# Consent: plain-language descriptions and category expansion
# ---------------------------------------------------------------------------

_TYPE_NOUNS = {
    "AllergyIntolerance": "allergies and intolerances",
    "CarePlan": "care plans",
    "CareTeam": "care team members",
    "Condition": "conditions and health problems",
    "Coverage": "insurance coverage",
    "Device": "medical devices and implants",
    "DiagnosticReport": "test and imaging reports",
    "DocumentReference": "clinical notes and documents",
    "Encounter": "visits and hospital stays",
    "Goal": "health goals",
    "Immunization": "immunizations (vaccines)",
    "Location": "care locations",
    "Medication": "medication details",
    "MedicationDispense": "medicines given out by a pharmacy",
    "MedicationRequest": "medications",
    "Observation": "test results, vital signs and other measurements",
    "Organization": "healthcare organizations",
    "Patient": "demographics",
    "Practitioner": "care providers",
    "PractitionerRole": "care providers' roles and contact details",
    "Procedure": "procedures",
    "Provenance": "record history (who created or changed each record)",
    "RelatedPerson": "related people, such as family and caregivers",
    "ServiceRequest": "orders and referrals",
    "Specimen": "lab samples (specimens)",
}

_CATEGORY_NOUNS = {
    ("Condition", CONDITION_CATEGORY_SYSTEM, "encounter-diagnosis"): "diagnoses from visits",
    ("Condition", CONDITION_CATEGORY_SYSTEM, "problem-list-item"): "problem list",
    ("Condition", US_CORE_CONDITION_CATEGORY_SYSTEM, "health-concern"): "health concerns",
    ("Observation", OBSERVATION_CATEGORY_SYSTEM, "laboratory"): "lab results",
    ("Observation", OBSERVATION_CATEGORY_SYSTEM, "vital-signs"): "vital signs",
    ("Observation", OBSERVATION_CATEGORY_SYSTEM, "social-history"): (
        "social history, such as smoking and alcohol use"
    ),
    ("Observation", OBSERVATION_CATEGORY_SYSTEM, "survey"): "survey and questionnaire answers",
    ("Observation", US_CORE_CATEGORY_SYSTEM, "sdoh"): (
        "social needs, such as housing, food and transportation"
    ),
    ("Observation", OBSERVATION_CATEGORY_SYSTEM, "procedure"): (
        "clinical test results, such as ECGs and eye exams"
    ),
    ("Observation", _US_CORE_5_OBSERVATION_CATEGORY_SYSTEM, "clinical-test"): (
        "clinical test results, such as ECGs and eye exams"
    ),
    ("Observation", OBSERVATION_CATEGORY_SYSTEM, "imaging"): "imaging results",
    ("Observation", OBSERVATION_CATEGORY_SYSTEM, "exam"): "physical exam findings",
}

_SIMPLE_DESCRIPTIONS = {
    "launch": "Use the context your health record system provides",
    "openid": "Know who you are (your sign-in identity)",
    "fhirUser": "See your health record profile (who you are in the record)",
    "profile": "See your name",
    "email": "See your email address",
    "offline_access": "Stay connected when you are not using the app",
    "online_access": "Stay connected while you are signed in",
}

_LAUNCH_DESCRIPTIONS = {
    "launch/patient": "Know which patient's record you are using",
    "launch/encounter": "Know which visit you are working on",
}

_GROUPS = {
    "resource": "data",
    "launch": "context",
    "launch_context": "context",
    "openid": "identity",
    "fhirUser": "identity",
    "profile": "identity",
    "email": "identity",
    "offline_access": "access",
    "online_access": "access",
    "other": "access",
}


def _verbs(permissions: str) -> str:
    # "read" covers r and s; c, u, d are add, change, delete. E.g. rus -> "Read and change".
    parts = []
    if "r" in permissions or "s" in permissions:
        parts.append("read")
    parts += [
        verb
        for letter, verb in (("c", "add"), ("u", "change"), ("d", "delete"))
        if letter in permissions
    ]
    text = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return text[0].upper() + text[1:]


def _category_noun(resource: ResourceScope) -> str | None:
    if len(resource.params) != 1 or resource.params[0][0] != "category":
        return None
    system, _, code = resource.params[0][1].rpartition("|")
    return _CATEGORY_NOUNS.get((resource.resource_type, system, code))


def _whose(context: str, noun: str) -> str:
    if context == "patient":
        return f"your {noun}"
    if context == "user":
        return f"{noun} in records you can access"
    return f"{noun} in all records on this server"


def _describe_resource(resource: ResourceScope) -> str:
    verbs = _verbs(resource.permissions)
    if resource.resource_type == "*":
        # Wildcards cover data "both now _and in the future_"; the spec says the server
        # "should inform the user" of that.
        whole = {
            "patient": "all your health records",
            "user": "all records you can access",
            "system": "all records on this server",
        }[resource.context]
        text = f"{verbs} {whole}, including kinds added later"
    else:
        noun = _category_noun(resource)
        if noun is not None:
            return f"{verbs} {_whose(resource.context, noun)}"
        noun = _TYPE_NOUNS.get(resource.resource_type, f"{resource.resource_type} data")
        text = f"{verbs} {_whose(resource.context, noun)}"
    if resource.params:
        limits = " and ".join(f"{name} is {value}" for name, value in resource.params)
        text += f" (only where {limits})"
    return text


def describe(scope: Scope) -> str:
    """A plain-language sentence for one scope, for a consent page."""
    if scope.resource is not None:
        return _describe_resource(scope.resource)
    if scope.kind == "launch_context":
        base = _launch_base(scope.raw)
        if base in _LAUNCH_DESCRIPTIONS:
            return _LAUNCH_DESCRIPTIONS[base]
        return f"Know which {base.removeprefix('launch/')} record you are working on"
    return _SIMPLE_DESCRIPTIONS.get(scope.kind, scope.raw)


@dataclass(frozen=True)
class ConsentItem:
    """One checkbox on the consent page. ``value`` is the scope string it grants.

    ``parent`` is set on a category item (``patient/Observation.rs?category=...``): the
    ``value`` of the whole-type item it narrows, shown beneath it.
    """

    value: str
    label: str
    scope: Scope
    group: str  # 'identity' | 'context' | 'data' | 'access'
    parent: str | None = None


def _category_scopes(scope: Scope) -> list[Scope]:
    """The category sub-scopes a whole-type Condition / Observation read scope may be
    narrowed to on the consent page (v2 granular syntax: the only way to say it)."""
    resource = scope.resource
    if (
        resource is None
        or resource.params
        or resource.resource_type not in GRANULAR_CATEGORIES
        or not ({"r", "s"} & set(resource.permissions))
    ):
        return []
    # ONC (g)(10) CCG: "if an app requests authorization for a resource level scope for
    # the 'Condition' or 'Observation' resources, then for patient authorization purposes a
    # Health IT Module must support presentation of the required sub-resource scopes".
    base = f"{resource.context}/{resource.resource_type}.{resource.permissions}"
    return [
        parse_scope(f"{base}?category={category}")
        for category in GRANULAR_CATEGORIES[resource.resource_type]
    ]


def consent_items(requested: list[Scope]) -> list[ConsentItem]:
    """One consent item per requested scope, in request order, its ``value`` exactly the
    requested string (v1 stays v1).

    A whole-type Condition / Observation scope with read or search permission is followed
    by its category items (``parent`` = its value): optional narrowing, all ticked by
    default. Values are unique (first kept).
    """
    items: list[ConsentItem] = []
    seen: set[str] = set()

    def add(item_scope: Scope, parent: str | None) -> None:
        seen.add(item_scope.raw)
        items.append(ConsentItem(value=item_scope.raw, label=describe(item_scope),
                                 scope=item_scope, group=_GROUPS[item_scope.kind],
                                 parent=parent))

    for scope in requested:
        if scope.raw in seen:
            continue
        add(scope, None)
        for category in _category_scopes(scope):
            if category.raw not in seen:
                add(category, scope.raw)
    return items


def granted_from_choice(items: list[ConsentItem], chosen: list[str]) -> list[Scope]:
    """The scopes the user's ticks grant, in item order.

    - a whole-type item ticked with every category beneath it ticked (or none offered):
      the requested scope itself, unchanged;
    - ticked, with some categories unticked: only the kept categories (v2 granular);
    - unticked: nothing of that type, whatever is ticked beneath it.

    Values not among the items are ignored: a user can only remove scopes, never add.
    """
    chosen_set = set(chosen)
    granted: list[Scope] = []
    for item in items:
        if item.parent is not None or item.value not in chosen_set:
            continue
        children = [c for c in items if c.parent == item.value]
        if all(c.value in chosen_set for c in children):
            granted.append(item.scope)
        else:
            granted += [c.scope for c in children if c.value in chosen_set]
    return granted


def previously_chosen(items: list[ConsentItem], asked: str, granted: str) -> list[str]:
    """The item values to tick on a consent page, given an earlier consent: what was asked
    then (``asked``, item values) and what was granted (``granted``, scope strings).

    An item offered before is ticked when it was granted (a category also when its whole
    type was); an item not offered before is ticked, as on a first consent.
    """
    asked_set, granted_set = set(asked.split()), set(granted.split())
    ticked: list[str] = []
    for item in items:
        if item.value not in asked_set:
            ticked.append(item.value)
            continue
        children = [c.value for c in items if c.parent == item.value]
        if (item.value in granted_set or (item.parent is not None and item.parent in
                                          granted_set)
                or any(c in granted_set for c in children)):
            ticked.append(item.value)
    return ticked


# ---------------------------------------------------------------------------
# Resource server: access decisions
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessDecision:
    """Outcome of :func:`check_access`.

    ``filters`` is None when access is unrestricted. Otherwise only resources matching
    at least one of the parameter sets may be returned or written (an empty tuple, used
    for denials, matches nothing).
    """

    allowed: bool
    filters: tuple[Params, ...] | None


def check_access(
    scopes: Iterable[Scope | str] | str,
    interaction: str,
    resource_type: str,
    contexts: Iterable[str] = ("patient", "user", "system"),
) -> AccessDecision:
    """Decide whether granted ``scopes`` permit ``interaction`` on ``resource_type``.

    ``interaction`` is one of c, r, u, d, s (or create, read, vread, update, patch,
    delete, search). Only scopes whose context is in ``contexts`` count. A string for
    ``scopes`` is parsed as a space-separated scope value.
    """
    letter = _INTERACTIONS.get(interaction)
    if letter is None:
        raise ValueError(f"unknown interaction {_quote(interaction)}")
    context_set = set(contexts)
    filters: list[Params] = []
    for scope in _as_scopes(scopes):
        resource = scope.resource
        if (
            resource is None
            or resource.context not in context_set
            or resource.resource_type not in ("*", resource_type)
            or letter not in resource.permissions
        ):
            continue
        if not resource.params:
            return AccessDecision(True, None)
        if resource.params not in filters:
            filters.append(resource.params)
    if filters:
        return AccessDecision(True, tuple(filters))
    return AccessDecision(False, ())


def _codeable_concepts(value: object) -> list[dict]:
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return []


def _token_matches(concepts: list[dict], token: str) -> bool:
    # FHIR token search: `code` (any system), `system|code`, `|code` (no system),
    # `system|` (any code in system).
    has_system = "|" in token
    system, _, code = token.rpartition("|") if has_system else ("", "", token)
    for concept in concepts:
        codings = concept.get("coding")
        if not isinstance(codings, list):
            continue
        for coding in codings:
            if not isinstance(coding, dict):
                continue
            if code and coding.get("code") != code:
                continue
            if has_system and (coding.get("system") or "") != system:
                continue
            if not code and not system:
                continue
            return True
    return False


_TOKEN_FIELDS = {"category": "category", "code": "code"}


def resource_matches(resource: dict, params: Params) -> bool:
    """True if a FHIR resource (JSON dict) satisfies every granular-scope parameter.

    Supported: ``category`` and ``code`` as FHIR token searches (a comma means "or").
    Any other parameter (or modifier) is not understood and never matches.
    """
    if not isinstance(resource, dict):
        return False
    for name, value in params:
        field = _TOKEN_FIELDS.get(name)
        if field is None:
            return False  # deny by default
        concepts = _codeable_concepts(resource.get(field))
        if not any(_token_matches(concepts, token) for token in value.split(",")):
            return False
    return True


def search_satisfies(
    params_requested: Mapping[str, list[str]], filters: tuple[Params, ...] | None
) -> bool:
    """True if a search's own parameters already restrict it to one of ``filters``.

    ``params_requested`` maps search parameter names to their values (repeated parameters
    are ANDed, commas inside one value are ORed). The search satisfies a filter set when,
    for each ``(name, value)`` in it, some requested value for ``name`` only lists tokens
    that the filter value lists (exact string comparison; conservative).
    """
    if filters is None:
        return True
    for param_set in filters:
        if all(_value_within(params_requested.get(name, []), value) for name, value in param_set):
            return True
    return False


def _value_within(requested_values: list[str], allowed_value: str) -> bool:
    allowed_tokens = set(allowed_value.split(","))
    return any(value and set(value.split(",")) <= allowed_tokens for value in requested_values)
