"""SMART on FHIR consent: the plain-language wording of scopes and the consent-page model.

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

from authserver.smart.grammar import (
    CONDITION_CATEGORY_SYSTEM,
    GRANULAR_CATEGORIES,
    OBSERVATION_CATEGORY_SYSTEM,
    US_CORE_CATEGORY_SYSTEM,
    US_CORE_CONDITION_CATEGORY_SYSTEM,
    ResourceScope,
    Scope,
    launch_base,
    parse_scope,
)

__all__ = [
    "ConsentItem",
    "consent_items",
    "describe",
    "duration_words",
    "granted_from_choice",
    "how_long",
    "previously_chosen",
]

# US Core 5.0.1 only; replaced in US Core 6+ (see GRANULAR_CATEGORIES). Described, not offered.
_US_CORE_5_OBSERVATION_CATEGORY_SYSTEM = (
    "http://hl7.org/fhir/us/core/CodeSystem/us-core-observation-category"
)

# ---------------------------------------------------------------------------
# Plain-language descriptions
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


def _whose(context: str, noun: str, patient_name: str | None = None) -> str:
    if context == "patient":
        return f"{patient_name}'s {noun}" if patient_name else f"your {noun}"
    if context == "user":
        return f"{noun} in records you can access"
    return f"{noun} in all records on this server"


def _describe_resource(resource: ResourceScope, patient_name: str | None) -> str:
    verbs = _verbs(resource.permissions)
    if resource.resource_type == "*":
        # Wildcards cover data "both now _and in the future_"; the spec says the server
        # "should inform the user" of that.
        whole = {
            "patient": f"all of {patient_name}'s health records" if patient_name
            else "all your health records",
            "user": "all records you can access",
            "system": "all records on this server",
        }[resource.context]
        text = f"{verbs} {whole}, including kinds added later"
    else:
        noun = _category_noun(resource)
        if noun is not None:
            return f"{verbs} {_whose(resource.context, noun, patient_name)}"
        noun = _TYPE_NOUNS.get(resource.resource_type, f"{resource.resource_type} data")
        text = f"{verbs} {_whose(resource.context, noun, patient_name)}"
    if resource.params:
        limits = " and ".join(f"{name} is {value}" for name, value in resource.params)
        text += f" (only where {limits})"
    return text


def describe(scope: Scope, patient_name: str | None = None) -> str:
    """A plain-language sentence for one scope, for a consent page (SMART App Launch
    #scopes-for-requesting-fhir-resources; wildcards per #wildcard-scopes). ``patient/``
    data is "your ..." unless ``patient_name`` names someone else's record (a clinician's
    launch: "Alice Example's lab results")."""
    if scope.resource is not None:
        return _describe_resource(scope.resource, patient_name)
    if scope.kind == "launch_context":
        base = launch_base(scope.raw)
        if base in _LAUNCH_DESCRIPTIONS:
            return _LAUNCH_DESCRIPTIONS[base]
        return f"Know which {base.removeprefix('launch/')} record you are working on"
    return _SIMPLE_DESCRIPTIONS.get(scope.kind, scope.raw)


def duration_words(seconds: int) -> str:
    """``3600`` -> "one hour", ``90 * 86400`` -> "90 days": the largest whole unit."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"one {unit}" if count == 1 else f"{count} {unit}s"
    return f"{seconds} seconds"


def how_long(values: set[str], access_seconds: int, offline_seconds: int) -> str:
    """What the consent page says about how long access lasts, for the requested items:
    ``offline_access`` keeps a refresh token alive for ``offline_seconds`` from its last use
    (ONC (g)(10): at least three months, sliding), ``online_access`` until sign-out, and
    otherwise one access token's lifetime."""
    if "offline_access" in values:
        return (f"The app can stay connected for up to {duration_words(offline_seconds)} after "
                "it last uses your choice, until you revoke it on your account page.")
    if "online_access" in values:
        return "The app stays connected until you sign out."
    return f"Access lasts {duration_words(access_seconds)}; then the app must ask again."


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


def consent_items(requested: list[Scope], patient_name: str | None = None
                  ) -> list[ConsentItem]:
    """One consent item per requested scope, in request order, its ``value`` exactly the
    requested string (v1 stays v1).

    A whole-type Condition / Observation scope with read or search permission is followed
    by its category items (``parent`` = its value): optional narrowing, all ticked by
    default. Values are unique (first kept). Category items use SMART App Launch
    #finer-grained-resource-constraints-using-search-parameters. ``patient_name``: see
    :func:`describe`.
    """
    items: list[ConsentItem] = []
    seen: set[str] = set()

    def add(item_scope: Scope, parent: str | None) -> None:
        seen.add(item_scope.raw)
        items.append(ConsentItem(value=item_scope.raw,
                                 label=describe(item_scope, patient_name),
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
