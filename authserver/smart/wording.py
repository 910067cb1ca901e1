"""The plain-language wording of SMART scopes, for the consent and account pages.

SMART App Launch 2.2.0, "Scopes and Launch Context"
(https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html): what each permission
lets an app do, in words (#scopes-for-requesting-fhir-resources); the server "should inform
the user" that a wildcard covers data added later (#wildcard-scopes); category-constrained
scopes (#finer-grained-resource-constraints-using-search-parameters) named by their US Core
category nouns.

Every sentence is built from message templates marked with :func:`N_` (extracted into the
gettext catalogues, ``translations/``) and translated by the ``gettext`` function a caller
passes (Flask-Babel's in a request; the identity, English, by default). Whole templates are
translated, not words, so a language can order them its own way.

This module is pure: standard library only, no I/O, no framework imports.
"""

from __future__ import annotations

from collections.abc import Callable

from authserver.smart.grammar import (
    CONDITION_CATEGORY_SYSTEM,
    OBSERVATION_CATEGORY_SYSTEM,
    US_CORE_CATEGORY_SYSTEM,
    US_CORE_CONDITION_CATEGORY_SYSTEM,
    ResourceScope,
    Scope,
    launch_base,
)

__all__ = ["N_", "Gettext", "describe", "duration_words", "how_long"]

#: A translation function: the English message template in, the reader's language out.
Gettext = Callable[[str], str]


def N_(message: str) -> str:  # gettext's conventional name for "mark only"
    """Mark ``message`` for the catalogues; it is translated where it is used."""
    return message


def _english(message: str) -> str:
    return message


# US Core 5.0.1 only; replaced in US Core 6+ (see GRANULAR_CATEGORIES). Described, not offered.
_US_CORE_5_OBSERVATION_CATEGORY_SYSTEM = (
    "http://hl7.org/fhir/us/core/CodeSystem/us-core-observation-category"
)

# ---------------------------------------------------------------------------
# Nouns and sentences
# ---------------------------------------------------------------------------

_TYPE_NOUNS = {
    "AllergyIntolerance": N_("allergies and intolerances"),
    "CarePlan": N_("care plans"),
    "CareTeam": N_("care team members"),
    "Condition": N_("conditions and health problems"),
    "Coverage": N_("insurance coverage"),
    "Device": N_("medical devices and implants"),
    "DiagnosticReport": N_("test and imaging reports"),
    "DocumentReference": N_("clinical notes and documents"),
    "Encounter": N_("visits and hospital stays"),
    "Goal": N_("health goals"),
    "Immunization": N_("immunizations (vaccines)"),
    "Location": N_("care locations"),
    "Medication": N_("medication details"),
    "MedicationDispense": N_("medicines given out by a pharmacy"),
    "MedicationRequest": N_("medications"),
    "Observation": N_("test results, vital signs and other measurements"),
    "Organization": N_("healthcare organizations"),
    "Patient": N_("demographics"),
    "Practitioner": N_("care providers"),
    "PractitionerRole": N_("care providers' roles and contact details"),
    "Procedure": N_("procedures"),
    "Provenance": N_("record history (who created or changed each record)"),
    "RelatedPerson": N_("related people, such as family and caregivers"),
    "ServiceRequest": N_("orders and referrals"),
    "Specimen": N_("lab samples (specimens)"),
}

_CATEGORY_NOUNS = {
    ("Condition", CONDITION_CATEGORY_SYSTEM, "encounter-diagnosis"): N_("diagnoses from visits"),
    ("Condition", CONDITION_CATEGORY_SYSTEM, "problem-list-item"): N_("problem list"),
    ("Condition", US_CORE_CONDITION_CATEGORY_SYSTEM, "health-concern"): N_("health concerns"),
    ("Observation", OBSERVATION_CATEGORY_SYSTEM, "laboratory"): N_("lab results"),
    ("Observation", OBSERVATION_CATEGORY_SYSTEM, "vital-signs"): N_("vital signs"),
    ("Observation", OBSERVATION_CATEGORY_SYSTEM, "social-history"): N_(
        "social history, such as smoking and alcohol use"
    ),
    ("Observation", OBSERVATION_CATEGORY_SYSTEM, "survey"): N_("survey and questionnaire answers"),
    ("Observation", US_CORE_CATEGORY_SYSTEM, "sdoh"): N_(
        "social needs, such as housing, food and transportation"
    ),
    ("Observation", OBSERVATION_CATEGORY_SYSTEM, "procedure"): N_(
        "clinical test results, such as ECGs and eye exams"
    ),
    ("Observation", _US_CORE_5_OBSERVATION_CATEGORY_SYSTEM, "clinical-test"): N_(
        "clinical test results, such as ECGs and eye exams"
    ),
    ("Observation", OBSERVATION_CATEGORY_SYSTEM, "imaging"): N_("imaging results"),
    ("Observation", OBSERVATION_CATEGORY_SYSTEM, "exam"): N_("physical exam findings"),
}

_SIMPLE_DESCRIPTIONS = {
    "launch": N_("Use the context your health record system provides"),
    "openid": N_("Know who you are (your sign-in identity)"),
    "fhirUser": N_("See your health record profile (who you are in the record)"),
    "profile": N_("See your name"),
    "email": N_("See your email address"),
    "offline_access": N_("Stay connected when you are not using the app"),
    "online_access": N_("Stay connected while you are signed in"),
}

_LAUNCH_DESCRIPTIONS = {
    "launch/patient": N_("Know which patient's record you are using"),
    "launch/encounter": N_("Know which visit you are working on"),
}


_VERBS = (("c", N_("add")), ("u", N_("change")), ("d", N_("delete")))


def _verbs(permissions: str, tr: Gettext) -> str:
    # "read" covers r and s; c, u, d are add, change, delete. E.g. rus -> "Read and change".
    parts = [tr(N_("read"))] if "r" in permissions or "s" in permissions else []
    parts += [tr(verb) for letter, verb in _VERBS if letter in permissions]
    text = parts[0] if len(parts) == 1 else tr(N_("{first} and {last}")).format(
        first=", ".join(parts[:-1]), last=parts[-1])
    return text[0].upper() + text[1:]


def _category_noun(resource: ResourceScope) -> str | None:
    if len(resource.params) != 1 or resource.params[0][0] != "category":
        return None
    system, _, code = resource.params[0][1].rpartition("|")
    return _CATEGORY_NOUNS.get((resource.resource_type, system, code))


def _whose(context: str, noun: str, patient: str | None, tr: Gettext) -> str:
    if context == "patient" and patient:
        return tr(N_("{patient}'s {noun}")).format(patient=patient, noun=noun)
    template = {"patient": N_("your {noun}"), "user": N_("{noun} in records you can access")
                }.get(context, N_("{noun} in all records on this server"))
    return tr(template).format(noun=noun)


def _whole(context: str, patient: str | None, tr: Gettext) -> str:
    """A wildcard's data: data "both now _and in the future_", which the spec says the
    server "should inform the user" of."""
    if context == "patient" and patient:
        whole = tr(N_("all of {patient}'s health records")).format(patient=patient)
    else:
        whole = tr({"patient": N_("all your health records"),
                    "user": N_("all records you can access")}.get(
                        context, N_("all records on this server")))
    return whole


def _describe_resource(resource: ResourceScope, patient: str | None, tr: Gettext) -> str:
    verbs = _verbs(resource.permissions, tr)
    if resource.resource_type == "*":
        return tr(N_("{verbs} {data}, including kinds added later")).format(
            verbs=verbs, data=_whole(resource.context, patient, tr))
    noun = _category_noun(resource)
    if noun is not None:
        return tr(N_("{verbs} {data}")).format(
            verbs=verbs, data=_whose(resource.context, tr(noun), patient, tr))
    known = _TYPE_NOUNS.get(resource.resource_type)
    noun = tr(known) if known else tr(N_("{type} data")).format(type=resource.resource_type)
    text = tr(N_("{verbs} {data}")).format(
        verbs=verbs, data=_whose(resource.context, noun, patient, tr))
    if resource.params:
        limits = tr(N_(" and ")).join(tr(N_("{name} is {value}")).format(name=n, value=v)
                                       for n, v in resource.params)
        text += tr(N_(" (only where {limits})")).format(limits=limits)
    return text


def describe(scope: Scope, patient_name: str | None = None,
             gettext: Gettext = _english) -> str:
    """A plain-language sentence for one scope, for a consent page (SMART App Launch
    #scopes-for-requesting-fhir-resources; wildcards per #wildcard-scopes). ``patient/``
    data is "your ..." unless ``patient_name`` names someone else's record (a clinician's
    launch: "Alice Example's lab results")."""
    if scope.resource is not None:
        return _describe_resource(scope.resource, patient_name, gettext)
    if scope.kind == "launch_context":
        base = launch_base(scope.raw)
        if base in _LAUNCH_DESCRIPTIONS:
            return gettext(_LAUNCH_DESCRIPTIONS[base])
        return gettext(N_("Know which {kind} record you are working on")).format(
            kind=base.removeprefix("launch/"))
    known = _SIMPLE_DESCRIPTIONS.get(scope.kind)
    return gettext(known) if known else scope.raw


_UNITS = ((86400, N_("one day"), N_("{n} days")), (3600, N_("one hour"), N_("{n} hours")),
          (60, N_("one minute"), N_("{n} minutes")))


def duration_words(seconds: int, gettext: Gettext = _english) -> str:
    """``3600`` -> "one hour", ``90 * 86400`` -> "90 days": the largest whole unit."""
    for size, one, many in _UNITS:
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return gettext(one) if count == 1 else gettext(many).format(n=count)
    return gettext(N_("{n} seconds")).format(n=seconds)


def how_long(values: set[str], access_seconds: int, offline_seconds: int,
             gettext: Gettext = _english) -> str:
    """What the consent page says about how long access lasts, for the requested items:
    ``offline_access`` keeps a refresh token alive for ``offline_seconds`` from its last use
    (ONC (g)(10): at least three months, sliding), ``online_access`` until sign-out, and
    otherwise one access token's lifetime."""
    if "offline_access" in values:
        return gettext(N_("The app can stay connected for up to {time} after it last uses "
                          "your choice, until you revoke it on your account page.")).format(
            time=duration_words(offline_seconds, gettext))
    if "online_access" in values:
        return gettext(N_("The app stays connected until you sign out."))
    return gettext(N_("Access lasts {time}; then the app must ask again.")).format(
        time=duration_words(access_seconds, gettext))
