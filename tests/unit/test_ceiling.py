"""Scope ceilings (authserver.smart.ceiling): what a person's grants may hold."""

import pytest

from authserver.smart.ceiling import (
    PolicyError,
    apply_ceiling,
    check_policy,
    effective_ceiling,
    role_ceiling,
)
from authserver.smart.grammar import format_scopes, parse_scopes

ASKED = ("openid fhirUser profile email launch launch/patient offline_access "
         "patient/*.rs user/*.rs system/*.rs user/Observation.read introspect")


def granted(role, fhir_user, asked=ASKED, role_policy=None, user_policy=None):
    ceiling = effective_ceiling(role, fhir_user, role_policy, user_policy)
    return format_scopes(apply_ceiling(parse_scopes(asked), ceiling))


def test_patient_ceiling_keeps_patient_scopes_and_drops_user_and_system():
    assert granted("patient", "Patient/p1") == (
        "openid fhirUser profile email launch launch/patient offline_access patient/*.rs")


def test_clinician_ceiling_keeps_user_and_patient_scopes_never_system():
    assert granted("clinician", "Practitioner/pr1") == (
        "openid fhirUser profile email launch launch/patient offline_access "
        "patient/*.rs user/*.rs user/Observation.read")


def test_clinician_without_fhir_user_gets_no_user_scopes():
    assert "user/" not in granted("clinician", None)


@pytest.mark.parametrize("role", ["admin", "developer"])
def test_admin_and_developer_without_clinical_fhir_user_get_identity_only(role):
    assert granted(role, None) == "openid fhirUser profile email"
    assert granted(role, "Patient/p1") == "openid fhirUser profile email"


def test_admin_with_a_practitioner_fhir_user_is_a_clinical_user():
    assert "user/*.rs" in granted("admin", "Practitioner/pr2").split()


def test_role_policy_narrows_wildcards_to_the_listed_types():
    front_desk = "user/Patient.rs user/Appointment.rs"
    assert granted("clinician", "Practitioner/pr1", "openid user/*.rs user/*.cruds",
                   role_policy=front_desk) == "openid user/Patient.rs user/Appointment.rs"


def test_policy_narrowing_keeps_v1_syntax_when_v1_can_say_it():
    assert granted("clinician", "Practitioner/pr1", "user/*.read",
                   role_policy="user/Patient.cruds") == "user/Patient.read"
    assert granted("clinician", "Practitioner/pr1", "user/*.read",
                   role_policy="user/Patient.r") == "user/Patient.r"


def test_policy_covering_the_request_keeps_the_requested_string():
    assert granted("clinician", "Practitioner/pr1", "user/Observation.read",
                   role_policy="user/*.rs") == "user/Observation.read"


def test_policy_constraints_apply_with_the_request():
    got = granted("patient", "Patient/p1", "patient/Observation.rs",
                  role_policy="patient/Observation.rs?category=laboratory")
    assert got == "patient/Observation.rs?category=laboratory"


def test_user_policy_replaces_role_policy_within_the_role_default():
    got = granted("clinician", "Practitioner/pr1", "user/*.rs",
                  role_policy="user/Patient.rs", user_policy="user/Observation.rs")
    assert got == "user/Observation.rs"


def test_policy_may_allow_a_named_non_smart_scope():
    assert granted("clinician", "Practitioner/pr1", "openid mcp:tools",
                   role_policy="user/*.rs mcp:tools") == "openid mcp:tools"
    assert granted("clinician", "Practitioner/pr1", "openid mcp:tools") == "openid"


def test_check_policy_refuses_system_scopes_and_user_scopes_for_patients():
    with pytest.raises(PolicyError, match="system/"):
        check_policy("clinician", "system/*.rs")
    with pytest.raises(PolicyError, match="patient never"):
        check_policy("patient", "user/Patient.rs")
    with pytest.raises(PolicyError):
        check_policy("clinician", "patinet/Observation.rs")
    with pytest.raises(PolicyError, match="introspect"):
        check_policy("clinician", "user/*.rs introspect")


def test_role_ceiling_has_no_system_scope_for_any_role():
    for role in ("patient", "clinician", "admin", "developer", "nobody"):
        ceiling = role_ceiling(role, "Practitioner/x")
        assert all(r.context != "system" for r in ceiling.resources)
