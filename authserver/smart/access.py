"""SMART on FHIR scopes at the resource server: may a token do interaction X on type T, and
which granular constraints must its results meet.

Specifications implemented here:

* SMART App Launch 2.2.0, "Scopes and Launch Context"
  https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html, sections
  "Scopes for requesting FHIR Resources" (#scopes-for-requesting-fhir-resources: ``c`` for
  create, ``r`` for read and vread, ``u`` for update and patch, ``d`` for delete, ``s`` for
  search; patient, user and system contexts; wildcard types), "Scope Equivalence"
  (#scope-equivalence: granted scopes are a union of access) and "Finer-grained resource
  constraints using search parameters"
  (#finer-grained-resource-constraints-using-search-parameters: a ``?param=value`` scope
  limits access to the resources that match it).
* FHIR R4 token search (``code``, ``system|code``, ``|code``, ``system|``)
  https://hl7.org/fhir/R4/search.html#token, for matching ``category`` and ``code``.

The scope grammar is :mod:`authserver.smart.grammar`; the resource-server kit that applies
these decisions to requests is :mod:`authserver.resource.access`.

This module is pure: standard library only, no I/O, no framework imports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from authserver.smart.grammar import Params, Scope, parse_scope, parse_scopes, quote_token

__all__ = ["AccessDecision", "check_access", "resource_matches", "search_satisfies"]

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


def _as_scopes(scopes: Iterable[Scope | str] | str) -> list[Scope]:
    if isinstance(scopes, str):
        return parse_scopes(scopes)
    return [s if isinstance(s, Scope) else parse_scope(s) for s in scopes]


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
    ``scopes`` is parsed as a space-separated scope value. Interactions per SMART App
    Launch #scopes-for-requesting-fhir-resources; ``filters`` per
    #finer-grained-resource-constraints-using-search-parameters.
    """
    letter = _INTERACTIONS.get(interaction)
    if letter is None:
        raise ValueError(f"unknown interaction {quote_token(interaction)}")
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
