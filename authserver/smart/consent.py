"""SMART on FHIR consent: the consent-page model (its items, the person's choice); the
scopes' wording is :mod:`authserver.smart.wording`.

Specifications implemented here:

* SMART App Launch 2.2.0, "Scopes and Launch Context"
  https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html, sections
  "Scopes for requesting FHIR Resources" (#scopes-for-requesting-fhir-resources: what each
  permission lets an app do, in words), "Wildcard scopes" (#wildcard-scopes: the server
  "should inform the user" that ``*`` covers data added later), "Finer-grained resource
  constraints using search parameters"
  (#finer-grained-resource-constraints-using-search-parameters: the category items a user
  may narrow to), "Scopes for requesting context data" (#scopes-for-requesting-context-data)
  and "Scopes for requesting identity data" (#scopes-for-requesting-identity-data).
* ONC §170.315(g)(10) Certification Companion Guide: for a requested resource-level
  Condition / Observation scope the consent UI must offer the sub-resource (category)
  scopes https://www.healthit.gov/test-method/standardized-api-patient-and-population-services
  (the categories offered are :data:`authserver.smart.grammar.GRANULAR_CATEGORIES`).
* US Core category code systems (Condition and Observation categories), for the nouns.

How the consent page uses this model is docs/consent.md.

This module is pure: standard library only, no I/O, no framework imports.
"""

from __future__ import annotations

from dataclasses import dataclass

from authserver.smart.grammar import GRANULAR_CATEGORIES, Scope, parse_scope
from authserver.smart.wording import Gettext, describe, duration_words, how_long

__all__ = [
    "ConsentItem",
    "consent_items",
    "describe",
    "duration_words",
    "granted_from_choice",
    "how_long",
    "previously_chosen",
]

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


# ---------------------------------------------------------------------------
# The consent model: items, category expansion, the user's choice
# ---------------------------------------------------------------------------


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


def consent_items(requested: list[Scope], patient_name: str | None = None,
                  gettext: Gettext | None = None) -> list[ConsentItem]:
    """One consent item per requested scope, in request order, its ``value`` exactly the
    requested string (v1 stays v1).

    A whole-type Condition / Observation scope with read or search permission is followed
    by its category items (``parent`` = its value): optional narrowing, all ticked by
    default. Values are unique (first kept). Category items use SMART App Launch
    #finer-grained-resource-constraints-using-search-parameters. ``patient_name`` and
    ``gettext`` (the labels' language): see :func:`~authserver.smart.wording.describe`.
    """
    items: list[ConsentItem] = []
    seen: set[str] = set()

    def add(item_scope: Scope, parent: str | None) -> None:
        seen.add(item_scope.raw)
        label = (describe(item_scope, patient_name, gettext) if gettext
                 else describe(item_scope, patient_name))
        items.append(ConsentItem(value=item_scope.raw, label=label,
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
