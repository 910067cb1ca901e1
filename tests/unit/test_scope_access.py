"""Resource-server access checks for SMART scopes.

Cases follow the examples on SMART App Launch 2.2 "Scopes and Launch Context"
(https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html).
"""

import pytest

from authserver.smart.access import (
    AccessDecision,
    check_access,
    resource_matches,
    search_satisfies,
)
from authserver.smart.grammar import ScopeError, parse_scope, parse_scopes

OBS = "http://terminology.hl7.org/CodeSystem/observation-category"
COND = "http://terminology.hl7.org/CodeSystem/condition-category"
US_CORE_COND = "http://hl7.org/fhir/us/core/CodeSystem/condition-category"
LAB = f"{OBS}|laboratory"
VITALS = f"{OBS}|vital-signs"
HBA1C = "http://loinc.org|4548-4"

ALL = ("patient", "user", "system")
DENY = (False, ())
OPEN = (True, None)


def only(*param_sets):
    return (True, tuple(param_sets))


CASES = [
    # Patient-level examples
    ("patient/Observation.rs", "r", "Observation", ALL, OPEN),
    ("patient/Observation.rs", "s", "Observation", ALL, OPEN),
    ("patient/Observation.rs", "c", "Observation", ALL, DENY),
    ("patient/Observation.rs", "d", "Observation", ALL, DENY),
    ("patient/Observation.rs", "r", "Condition", ALL, DENY),
    ("patient/Patient.r", "r", "Patient", ALL, OPEN),
    ("patient/Patient.r", "s", "Patient", ALL, DENY),
    ("patient/Observation.c", "c", "Observation", ALL, OPEN),
    # "Note also that write access does not imply read access."
    ("patient/Observation.c", "r", "Observation", ALL, DENY),
    ("patient/*.cruds", "d", "Immunization", ALL, OPEN),
    ("patient/*.cruds", "u", "Patient", ALL, OPEN),
    ("patient/*.rs", "s", "AllergyIntolerance", ALL, OPEN),
    ("patient/*.rs", "c", "AllergyIntolerance", ALL, DENY),
    ("patient/AllergyIntolerance.rs patient/AllergyIntolerance.cud", "u", "AllergyIntolerance",
     ALL, OPEN),
    ("patient/AllergyIntolerance.cud", "s", "AllergyIntolerance", ALL, DENY),
    # User-level examples
    ("user/Observation.rs", "s", "Observation", ALL, OPEN),
    ("user/Appointment.cruds", "d", "Appointment", ALL, OPEN),
    ("user/Appointment.cruds", "r", "Patient", ALL, DENY),
    # "Individual attributes such as d for delete could be removed if not required."
    ("user/Appointment.crus", "d", "Appointment", ALL, DENY),
    ("user/*.cruds", "c", "Encounter", ALL, OPEN),
    ("user/Patient.rs", "s", "Patient", ALL, OPEN),
    # System-level examples
    ("system/Observation.rs", "r", "Observation", ALL, OPEN),
    ("system/Observation.rs", "u", "Observation", ALL, DENY),
    ("system/*.rs", "s", "Condition", ALL, OPEN),
    ("system/Encounter.cud", "c", "Encounter", ALL, OPEN),
    ("system/Encounter.cud", "r", "Encounter", ALL, DENY),
    # v1 scopes with their v2 semantics (.read => .rs, .write => .cud, .* => .cruds)
    ("patient/*.read", "r", "Condition", ALL, OPEN),
    ("patient/*.read", "s", "Condition", ALL, OPEN),
    # "interpreting .read as .rd and granting extraneous delete permissions" must not happen
    ("patient/*.read", "d", "Condition", ALL, DENY),
    ("patient/*.*", "d", "Condition", ALL, OPEN),
    ("patient/Observation.read", "s", "Observation", ALL, OPEN),
    ("user/Observation.write", "u", "Observation", ALL, OPEN),
    ("user/Observation.write", "r", "Observation", ALL, DENY),
    # Interaction names
    ("patient/Observation.rs", "read", "Observation", ALL, OPEN),
    ("patient/Observation.rs", "search", "Observation", ALL, OPEN),
    ("patient/Encounter.c", "create", "Encounter", ALL, OPEN),
    ("patient/Encounter.c", "update", "Encounter", ALL, DENY),
    ("patient/Observation.u", "patch", "Observation", ALL, OPEN),
    ("patient/Observation.r", "vread", "Observation", ALL, OPEN),
    ("patient/Observation.cruds", "delete", "Observation", ALL, OPEN),
    # Granular (search-parameter) scopes
    (f"patient/Observation.rs?category={LAB}", "s", "Observation", ALL,
     only((("category", LAB),))),
    (f"patient/Observation.rs?category={LAB}", "r", "Observation", ALL,
     only((("category", LAB),))),
    (f"patient/Observation.rs?category={LAB}", "c", "Observation", ALL, DENY),
    (f"patient/Observation.rs?category={LAB}", "s", "Condition", ALL, DENY),
    (f"patient/Observation.rs?category={LAB} patient/Observation.rs?category={VITALS}", "s",
     "Observation", ALL, only((("category", LAB),), (("category", VITALS),))),
    (f"patient/Observation.rs?category={LAB} patient/Observation.rs", "s", "Observation", ALL,
     OPEN),
    (f"patient/Observation.rs?category={LAB} patient/*.r", "s", "Observation", ALL,
     only((("category", LAB),))),
    (f"patient/Observation.rs?category={LAB} patient/*.r", "r", "Observation", ALL, OPEN),
    (f"patient/Observation.r?category={LAB} patient/Observation.rs?category={LAB}", "r",
     "Observation", ALL, only((("category", LAB),))),
    (f"patient/Observation.rs?category={LAB}&code={HBA1C}", "s", "Observation", ALL,
     only((("category", LAB), ("code", HBA1C)))),
    (f"patient/Condition.rs?category={COND}|problem-list-item "
     f"patient/Condition.rs?category={US_CORE_COND}|health-concern", "s", "Condition", ALL,
     only((("category", f"{COND}|problem-list-item"),),
          (("category", f"{US_CORE_COND}|health-concern"),))),
    # Context filtering
    ("user/*.cruds", "r", "Observation", ("patient",), DENY),
    ("user/*.cruds", "r", "Observation", ("user",), OPEN),
    ("system/*.rs", "s", "Observation", ("patient", "user"), DENY),
    (f"patient/Observation.rs user/Observation.rs?category={LAB}", "s", "Observation",
     ("user",), only((("category", LAB),))),
    # Nothing relevant granted
    ("", "r", "Observation", ALL, DENY),
    ("openid fhirUser launch/patient offline_access", "r", "Patient", ALL, DENY),
    ("patient/Observation.rs", "r", "observation", ALL, DENY),
]  # fmt: skip


@pytest.mark.parametrize(("scopes", "interaction", "rtype", "contexts", "expected"), CASES)
def test_check_access_table(scopes, interaction, rtype, contexts, expected):
    allowed, filters = expected
    assert check_access(scopes, interaction, rtype, contexts) == AccessDecision(allowed, filters)


def test_check_access_table_has_at_least_40_cases():
    assert len(CASES) >= 40


@pytest.mark.parametrize(
    "scopes",
    [
        f"openid patient/Observation.rs?category={LAB}",
        ["openid", f"patient/Observation.rs?category={LAB}"],
        parse_scopes(f"openid patient/Observation.rs?category={LAB}"),
        [parse_scope("openid"), f"patient/Observation.rs?category={LAB}"],
        (s for s in ["openid", f"patient/Observation.rs?category={LAB}"]),
    ],
)
def test_check_access_accepts_text_strings_or_scopes(scopes):
    assert check_access(scopes, "s", "Observation") == AccessDecision(True, ((("category", LAB),),))


def test_check_access_default_contexts_are_all_three():
    assert check_access("system/Observation.rs", "r", "Observation").allowed is True


def test_check_access_unknown_interaction_raises_value_error():
    with pytest.raises(ValueError, match="unknown interaction"):
        check_access("patient/*.cruds", "operation", "Observation")


def test_check_access_invalid_scope_raises_scope_error():
    with pytest.raises(ScopeError):
        check_access(["patient/Observation.dus"], "d", "Observation")


# --- resource_matches -----------------------------------------------------------------------


def observation(*categories, code=None):
    resource = {
        "resourceType": "Observation",
        "category": [{"coding": list(codings)} for codings in categories],
    }
    if code is not None:
        resource["code"] = {"coding": [code]}
    return resource


LAB_CODING = {"system": OBS, "code": "laboratory"}
VITALS_CODING = {"system": OBS, "code": "vital-signs"}
HBA1C_CODING = {"system": "http://loinc.org", "code": "4548-4"}


@pytest.mark.parametrize(
    ("resource", "params", "expected"),
    [
        (observation([LAB_CODING]), (("category", LAB),), True),
        (observation([VITALS_CODING]), (("category", LAB),), False),
        (observation([{"system": "http://example.org/cat", "code": "laboratory"}]),
         (("category", LAB),), False),
        (observation([{"code": "laboratory"}]), (("category", LAB),), False),
        (observation([VITALS_CODING], [LAB_CODING]), (("category", LAB),), True),
        (observation([{"system": "http://example.org/x", "code": "x"}, LAB_CODING]),
         (("category", LAB),), True),
        ({"resourceType": "Observation", "category": {"coding": [LAB_CODING]}},
         (("category", LAB),), True),
        ({"resourceType": "Observation"}, (("category", LAB),), False),
        ({"resourceType": "Observation", "category": []}, (("category", LAB),), False),
        # FHIR token forms: code alone, |code (no system), system| (any code)
        (observation([LAB_CODING]), (("category", "laboratory"),), True),
        (observation([{"code": "laboratory"}]), (("category", "|laboratory"),), True),
        (observation([LAB_CODING]), (("category", "|laboratory"),), False),
        (observation([VITALS_CODING]), (("category", f"{OBS}|"),), True),
        # Comma means "or"; separate parameters mean "and"
        (observation([VITALS_CODING]), (("category", f"{LAB},{VITALS}"),), True),
        (observation([LAB_CODING], code=HBA1C_CODING),
         (("category", LAB), ("code", HBA1C)), True),
        (observation([LAB_CODING], code={"system": "http://loinc.org", "code": "2339-0"}),
         (("category", LAB), ("code", HBA1C)), False),
        (observation([LAB_CODING], code=HBA1C_CODING), (("code", HBA1C),), True),
        (observation([LAB_CODING], code=HBA1C_CODING), (("code", "4548-4"),), True),
        # Condition categories
        ({"resourceType": "Condition",
          "category": [{"coding": [{"system": US_CORE_COND, "code": "health-concern"}]}]},
         (("category", f"{US_CORE_COND}|health-concern"),), True),
        ({"resourceType": "Condition",
          "category": [{"coding": [{"system": COND, "code": "problem-list-item"}]}]},
         (("category", f"{US_CORE_COND}|health-concern"),), False),
        # Unknown parameters or modifiers are denied
        (observation([LAB_CODING]), (("_security", "R"),), False),
        (observation([LAB_CODING], code=HBA1C_CODING),
         (("code:in", "http://example.org/ValueSet/x"),), False),
        (observation([LAB_CODING]), (("category", LAB), ("patient.birthdate", "1990")), False),
        # No constraint
        (observation([LAB_CODING]), (), True),
        # Malformed resources never match and never raise
        ({"category": "laboratory"}, (("category", LAB),), False),
        ({"category": [{"coding": {"system": OBS, "code": "laboratory"}}]},
         (("category", LAB),), False),
        ({"category": [None, "x", {"coding": [None, 3]}]}, (("category", LAB),), False),
        ({"category": [{"coding": [{}]}]}, (("category", "|"),), False),
        ("not a resource", (("category", LAB),), False),
    ],
)  # fmt: skip
def test_resource_matches_table(resource, params, expected):
    assert resource_matches(resource, params) is expected


# --- search_satisfies -----------------------------------------------------------------------

LAB_ONLY = ((("category", LAB),),)


@pytest.mark.parametrize(
    ("search", "filters", "expected"),
    [
        ({}, None, True),
        ({"category": [LAB]}, (), False),
        ({"category": [LAB]}, LAB_ONLY, True),
        ({"category": [VITALS]}, LAB_ONLY, False),
        ({}, LAB_ONLY, False),
        ({"code": [HBA1C]}, LAB_ONLY, False),
        # Repeated parameters are ANDed: one of them restricting to labs is enough
        ({"category": [VITALS, LAB]}, LAB_ONLY, True),
        # A comma ORs: labs-or-vitals is wider than labs
        ({"category": [f"{LAB},{VITALS}"]}, LAB_ONLY, False),
        ({"category": [f"{LAB},{VITALS}"]}, ((("category", f"{LAB},{VITALS}"),),), True),
        ({"category": [LAB]}, ((("category", f"{LAB},{VITALS}"),),), True),
        # Conservative: a system-less code could match other systems
        ({"category": ["laboratory"]}, LAB_ONLY, False),
        ({"category:not": [VITALS]}, LAB_ONLY, False),
        ({"category": [""]}, LAB_ONLY, False),
        # Multi-parameter constraint needs every parameter
        ({"category": [LAB]}, ((("category", LAB), ("code", HBA1C)),), False),
        ({"category": [LAB], "code": [HBA1C]}, ((("category", LAB), ("code", HBA1C)),), True),
        # Any one of several permitted parameter sets suffices
        ({"category": [VITALS]}, ((("category", LAB),), (("category", VITALS),)), True),
    ],
)
def test_search_satisfies_table(search, filters, expected):
    assert search_satisfies(search, filters) is expected


def test_search_satisfies_with_check_access_filters():
    decision = check_access(
        f"patient/Observation.rs?category={LAB} patient/Observation.rs?category={VITALS}",
        "search",
        "Observation",
    )
    assert search_satisfies({"category": [VITALS], "patient": ["123"]}, decision.filters)
    assert not search_satisfies({"patient": ["123"]}, decision.filters)
