"""Tests for authserver.smart.consent: plain-language descriptions, consent items with their
category sub-scopes, and the scopes a user's choice grants (SMART App Launch 2.2)."""

import pytest

from authserver.smart.consent import (
    ConsentItem,
    consent_items,
    describe,
    granted_from_choice,
    previously_chosen,
)
from authserver.smart.grammar import GRANULAR_CATEGORIES, parse_scope, parse_scopes

OBS = "http://terminology.hl7.org/CodeSystem/observation-category"
COND = "http://terminology.hl7.org/CodeSystem/condition-category"
US_CORE_COND = "http://hl7.org/fhir/us/core/CodeSystem/condition-category"
US_CORE = "http://hl7.org/fhir/us/core/CodeSystem/us-core-category"
LAB = f"{OBS}|laboratory"
VITALS = f"{OBS}|vital-signs"

OBSERVATION_SUBSCOPES_RS = [
    f"patient/Observation.rs?category={OBS}|procedure",
    f"patient/Observation.rs?category={OBS}|laboratory",
    f"patient/Observation.rs?category={OBS}|social-history",
    f"patient/Observation.rs?category={US_CORE}|sdoh",
    f"patient/Observation.rs?category={OBS}|survey",
    f"patient/Observation.rs?category={OBS}|vital-signs",
]
CONDITION_SUBSCOPES_RS = [
    f"patient/Condition.rs?category={COND}|encounter-diagnosis",
    f"patient/Condition.rs?category={COND}|problem-list-item",
    f"patient/Condition.rs?category={US_CORE_COND}|health-concern",
]



# --- describe ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "label"),
    [
        (f"patient/Observation.rs?category={LAB}", "Read your lab results"),
        (f"patient/Observation.rs?category={VITALS}", "Read your vital signs"),
        (
            f"patient/Observation.rs?category={US_CORE}|sdoh",
            "Read your social needs, such as housing, food and transportation",
        ),
        (f"patient/Condition.rs?category={COND}|problem-list-item", "Read your problem list"),
        (
            f"patient/Condition.rs?category={COND}|encounter-diagnosis",
            "Read your diagnoses from visits",
        ),
        (
            f"patient/Condition.rs?category={US_CORE_COND}|health-concern",
            "Read your health concerns",
        ),
        ("patient/Condition.rs", "Read your conditions and health problems"),
        ("patient/*.rs", "Read all your health records, including kinds added later"),
        ("patient/*.read", "Read all your health records, including kinds added later"),
        (
            "patient/*.*",
            "Read, add, change and delete all your health records, including kinds added later",
        ),
        ("patient/Patient.r", "Read your demographics"),
        ("patient/MedicationRequest.rus", "Read and change your medications"),
        ("patient/MedicationRequest.cu", "Add and change your medications"),
        ("patient/AllergyIntolerance.d", "Delete your allergies and intolerances"),
        (
            "patient/Immunization.write",
            "Add, change and delete your immunizations (vaccines)",
        ),
        ("patient/Observation.c", "Add your test results, vital signs and other measurements"),
        (
            "user/Observation.rs",
            "Read test results, vital signs and other measurements in records you can access",
        ),
        (
            "user/*.cruds",
            "Read, add, change and delete all records you can access, "
            + "including kinds added later",
        ),
        (
            "user/Appointment.cruds",
            "Read, add, change and delete Appointment data in records you can access",
        ),
        (f"user/Observation.rs?category={LAB}", "Read lab results in records you can access"),
        (
            "system/Encounter.cud",
            "Add, change and delete visits and hospital stays in all records on this server",
        ),
        ("system/*.rs", "Read all records on this server, including kinds added later"),
        (
            "patient/Observation.rs?code=http://loinc.org|2339-0",
            "Read your test results, vital signs and other measurements"
            " (only where code is http://loinc.org|2339-0)",
        ),
        ("offline_access", "Stay connected when you are not using the app"),
        ("online_access", "Stay connected while you are signed in"),
        ("openid", "Know who you are (your sign-in identity)"),
        ("fhirUser", "See your health record profile (who you are in the record)"),
        ("profile", "See your name"),
        ("email", "See your email address"),
        ("launch/patient", "Know which patient's record you are using"),
        ("launch/encounter", "Know which visit you are working on"),
        ("launch", "Use the context your health record system provides"),
        ("launch/imagingstudy", "Know which imagingstudy record you are working on"),
        ("introspect", "introspect"),
    ],
)
def test_describe_plain_words(text, label):
    assert describe(parse_scope(text)) == label


@pytest.mark.parametrize(
    "rtype",
    [
        "AllergyIntolerance", "CarePlan", "CareTeam", "Condition", "Coverage", "Device",
        "DiagnosticReport", "DocumentReference", "Encounter", "Goal", "Immunization",
        "Location", "Medication", "MedicationDispense", "MedicationRequest", "Observation",
        "Organization", "Patient", "Practitioner", "PractitionerRole", "Procedure",
        "Provenance", "RelatedPerson", "ServiceRequest", "Specimen",
    ],
)  # fmt: skip
def test_describe_uscdi_type_has_friendly_noun(rtype):
    label = describe(parse_scope(f"patient/{rtype}.rs"))
    assert label.startswith("Read your ")
    assert rtype not in label


# --- consent_items ------------------------------------------------------------------------


def test_consent_items_keep_v1_observation_read_whole_with_v2_categories_beneath():
    items = consent_items(parse_scopes("patient/Observation.read"))
    assert [i.value for i in items] == ["patient/Observation.read", *OBSERVATION_SUBSCOPES_RS]
    assert items[0].parent is None and items[0].label == (
        "Read your test results, vital signs and other measurements")
    assert all(i.parent == "patient/Observation.read" for i in items[1:])
    assert [i.label for i in items[1:]] == [
        "Read your clinical test results, such as ECGs and eye exams",
        "Read your lab results",
        "Read your social history, such as smoking and alcohol use",
        "Read your social needs, such as housing, food and transportation",
        "Read your survey and questionnaire answers",
        "Read your vital signs",
    ]
    assert {i.group for i in items} == {"data"}
    assert all(i.scope == parse_scope(i.value) for i in items)


def test_consent_items_keep_v2_observation_rs_whole():
    items = consent_items(parse_scopes("patient/Observation.rs"))
    assert [i.value for i in items] == ["patient/Observation.rs", *OBSERVATION_SUBSCOPES_RS]


def test_consent_items_keep_v2_condition_rs_whole():
    items = consent_items(parse_scopes("patient/Condition.rs"))
    assert [i.value for i in items] == ["patient/Condition.rs", *CONDITION_SUBSCOPES_RS]
    assert [i.label for i in items[1:]] == [
        "Read your diagnoses from visits",
        "Read your problem list",
        "Read your health concerns",
    ]


def test_consent_items_categories_keep_permissions():
    items = consent_items(parse_scopes("patient/Condition.r user/Condition.cruds"))
    assert [i.value for i in items] == [
        "patient/Condition.r",
        f"patient/Condition.r?category={COND}|encounter-diagnosis",
        f"patient/Condition.r?category={COND}|problem-list-item",
        f"patient/Condition.r?category={US_CORE_COND}|health-concern",
        "user/Condition.cruds",
        f"user/Condition.cruds?category={COND}|encounter-diagnosis",
        f"user/Condition.cruds?category={COND}|problem-list-item",
        f"user/Condition.cruds?category={US_CORE_COND}|health-concern",
    ]


def test_consent_items_full_request_exact_values_and_groups():
    requested = parse_scopes(
        "openid fhirUser launch/patient offline_access patient/Patient.rs "
        "patient/Condition.read patient/*.rs patient/Observation.c"
    )
    items = consent_items(requested)
    assert [(i.value, i.group) for i in items] == [
        ("openid", "identity"),
        ("fhirUser", "identity"),
        ("launch/patient", "context"),
        ("offline_access", "access"),
        ("patient/Patient.rs", "data"),
        ("patient/Condition.read", "data"),
        *[(v, "data") for v in CONDITION_SUBSCOPES_RS],
        ("patient/*.rs", "data"),
        ("patient/Observation.c", "data"),
    ]


def test_consent_items_does_not_expand_wildcard_or_write_only_or_granular():
    text = f"patient/*.read patient/Observation.cu patient/Observation.rs?category={LAB}"
    assert [i.value for i in consent_items(parse_scopes(text))] == text.split(" ")


def test_consent_items_collapses_duplicate_category_items():
    requested = parse_scopes(f"patient/Observation.rs?category={LAB} patient/Observation.rs")
    values = [i.value for i in consent_items(requested)]
    assert values[:2] == [f"patient/Observation.rs?category={LAB}", "patient/Observation.rs"]
    assert values.count(f"patient/Observation.rs?category={LAB}") == 1
    assert len(values) == len(GRANULAR_CATEGORIES["Observation"]) + 1


def test_consent_item_label_is_describe():
    scope = parse_scope("openid")
    assert consent_items([scope]) == [
        ConsentItem(value="openid", label=describe(scope), scope=scope, group="identity")
    ]


def test_consent_items_other_and_launch_groups():
    items = consent_items(parse_scopes("launch introspect online_access"))
    assert [(i.value, i.group) for i in items] == [
        ("launch", "context"),
        ("introspect", "access"),
        ("online_access", "access"),
    ]


# --- granted_from_choice ----------------------------------------------------------------


def test_granted_from_choice_returns_chosen_in_item_order():
    items = consent_items(parse_scopes("openid patient/Condition.rs offline_access"))
    chosen = ["offline_access", "patient/Condition.rs", CONDITION_SUBSCOPES_RS[1], "openid"]
    assert [s.raw for s in granted_from_choice(items, chosen)] == [
        "openid",
        CONDITION_SUBSCOPES_RS[1],
        "offline_access",
    ]


def test_granted_from_choice_whole_type_with_all_categories_is_the_requested_string():
    items = consent_items(parse_scopes("patient/Observation.read"))
    assert [s.raw for s in granted_from_choice(items, [i.value for i in items])] == [
        "patient/Observation.read"]


def test_granted_from_choice_whole_type_unticked_grants_nothing_of_it():
    items = consent_items(parse_scopes("patient/Observation.rs"))
    assert granted_from_choice(items, OBSERVATION_SUBSCOPES_RS) == []


def test_previously_chosen_ticks_what_was_granted_and_what_is_new():
    items = consent_items(parse_scopes("openid patient/Condition.rs offline_access"))
    asked = "openid patient/Condition.rs " + " ".join(CONDITION_SUBSCOPES_RS)
    ticked = previously_chosen(items, asked, f"openid {CONDITION_SUBSCOPES_RS[1]}")
    assert ticked == ["openid", "patient/Condition.rs", CONDITION_SUBSCOPES_RS[1],
                      "offline_access"]
    whole = previously_chosen(items, asked, "patient/Condition.rs")
    assert set(CONDITION_SUBSCOPES_RS) <= set(whole) and "openid" not in whole


def test_granted_from_choice_ignores_values_not_offered():
    items = consent_items(parse_scopes("openid patient/Condition.rs"))
    chosen = ["openid", "patient/Condition.rs", "patient/*.cruds", "user/*.cruds", "fhirUser"]
    assert [s.raw for s in granted_from_choice(items, chosen)] == ["openid"]


def test_granted_from_choice_nothing_chosen_is_empty():
    assert granted_from_choice(consent_items(parse_scopes("openid")), []) == []




def test_a_clinicians_items_name_the_patient_never_your():
    from authserver.smart.consent import consent_items
    from authserver.smart.grammar import parse_scopes

    items = consent_items(parse_scopes("patient/*.rs patient/Observation.rs user/Patient.rs"),
                          "Alice Example")
    labels = [i.label for i in items]
    assert labels[0] == "Read all of Alice Example's health records, including kinds added later"
    assert "Read Alice Example's lab results" in labels
    assert all("your" not in label for label in labels)
    assert "Read demographics in records you can access" in labels  # user/ is unchanged
    # the values (what is granted) don't depend on the wording
    assert [i.value for i in items] == [i.value for i in consent_items(
        parse_scopes("patient/*.rs patient/Observation.rs user/Patient.rs"))]


def test_how_long_access_lasts_in_words():
    from authserver.smart.consent import duration_words, how_long

    assert duration_words(3600) == "one hour"
    assert duration_words(90 * 86400) == "90 days"
    assert duration_words(5400) == "90 minutes"
    assert duration_words(61) == "61 seconds"
    assert "up to 90 days" in how_long({"offline_access", "online_access"}, 3600, 90 * 86400)
    assert how_long({"online_access"}, 3600, 0) == "The app stays connected until you sign out."
    assert how_long({"openid"}, 1800, 0) == "Access lasts 30 minutes; then the app must ask again."
