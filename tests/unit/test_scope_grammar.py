"""Tests for authserver.smart.grammar: parsing, formatting, narrowing and subsets of SMART
scopes (SMART App Launch 2.2 "Scopes and Launch Context")."""

import operator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authserver.smart.grammar import (
    ResourceScope,
    Scope,
    ScopeError,
    format_scopes,
    is_subset,
    narrow,
    parse_scope,
    parse_scopes,
)

OBS = "http://terminology.hl7.org/CodeSystem/observation-category"
LAB = f"{OBS}|laboratory"
VITALS = f"{OBS}|vital-signs"


def res(text: str) -> ResourceScope:
    resource = parse_scope(text).resource
    assert resource is not None
    return resource


# --- parsing: valid forms ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "context", "rtype", "permissions", "version"),
    [
        ("patient/Observation.read", "patient", "Observation", "rs", 1),
        ("user/Appointment.write", "user", "Appointment", "cud", 1),
        ("patient/*.*", "patient", "*", "cruds", 1),
        ("system/*.read", "system", "*", "rs", 1),
        ("patient/Observation.rs", "patient", "Observation", "rs", 2),
        ("patient/Patient.r", "patient", "Patient", "r", 2),
        ("patient/Observation.c", "patient", "Observation", "c", 2),
        ("user/*.cruds", "user", "*", "cruds", 2),
        ("system/Encounter.cud", "system", "Encounter", "cud", 2),
        ("user/Appointment.cruds", "user", "Appointment", "cruds", 2),
        ("patient/Observation.s", "patient", "Observation", "s", 2),
    ],
)
def test_parse_scope_resource_fields(text, context, rtype, permissions, version):
    scope = parse_scope(text)
    assert scope == Scope(
        raw=text,
        kind="resource",
        resource=ResourceScope(context, rtype, permissions, version, (), text),
    )


def test_parse_scope_granular_keeps_params_verbatim_in_order():
    text = f"patient/Observation.rs?category={LAB}&code=http://loinc.org|2339-0"
    assert res(text) == ResourceScope(
        context="patient",
        resource_type="Observation",
        permissions="rs",
        version=2,
        params=(("category", LAB), ("code", "http://loinc.org|2339-0")),
        raw=text,
    )


def test_parse_scope_granular_value_may_contain_equals_and_question_mark():
    assert res("user/Observation.rs?code=a=b?c").params == (("code", "a=b?c"),)


def test_parse_scope_granular_wildcard_type_allowed():
    assert res("patient/*.rs?_security=R").params == (("_security", "R"),)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("launch", "launch"),
        ("launch/patient", "launch_context"),
        ("launch/encounter", "launch_context"),
        ("launch/imagingstudy", "launch_context"),
        ("launch/list?role=https://example.org/med-list-at-home", "launch_context"),
        ("launch/relatedperson?role=friend", "launch_context"),
        ("openid", "openid"),
        ("fhirUser", "fhirUser"),
        ("profile", "profile"),
        ("email", "email"),
        ("offline_access", "offline_access"),
        ("online_access", "online_access"),
        ("introspect", "other"),
        ("https://vendor.example.com/scopes/billing", "other"),
        ("launchpad", "other"),
        ("fhiruser", "other"),
    ],
)
def test_parse_scope_non_resource_kind(text, kind):
    assert parse_scope(text) == Scope(raw=text, kind=kind, resource=None)


def test_parse_scopes_tolerates_extra_spaces_and_drops_duplicates():
    scopes = parse_scopes("  openid   patient/Observation.rs openid  patient/Observation.read ")
    assert [s.raw for s in scopes] == [
        "openid",
        "patient/Observation.rs",
        "patient/Observation.read",
    ]


def test_parse_scopes_empty_text_returns_empty_list():
    assert parse_scopes("") == []
    assert parse_scopes("   ") == []


def test_format_scopes_round_trip_normalizes_spacing():
    text = "  launch/patient  openid fhirUser patient/*.rs launch/patient "
    assert format_scopes(parse_scopes(text)) == "launch/patient openid fhirUser patient/*.rs"


# --- parsing: invalid forms ---------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        "patient/Observation.xyz",
        "patient/Observation.rc",  # out of order
        "patient/Observation.dus",  # out of order: the spec's own example
        "patient/Observation.rr",
        "patient/Observation.",
        "patient/Observation",
        "patient/",
        "patient/observation.rs",
        "patient/O.rs",
        "patient/Obs3rvation.rs",
        "patient/Observation.rs?",
        "patient/Observation.rs?category",
        "patient/Observation.rs?=x",
        "patient/Observation.rs?category=",
        "patient/Observation.rs?category=a&&code=b",
        "patient/Observation.read?category=x|laboratory",  # params only on v2
        "patient/*.*?category=x",
        "patient/Observation.READ",
        "user/Observation.cruds*",
        "foo/Observation.rs",
        "Patient/Observation.rs",
        "patinet/*.read",
        "launch/Patient",
        "launch/",
        "launch/patient?role=",
        "launch/patient?role=a&role=b",
        "launch/patient?foo=bar",
        'patient/Observation.rs?code="x"',
        "patient\\Observation.rs",
        "caf\u00e9",
        "a\tb",
    ],
)
def test_parse_scope_invalid_raises_naming_token(token):
    with pytest.raises(ScopeError) as excinfo:
        parse_scope(token)
    assert excinfo.value.token == token


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("openid patient/Observation.rc launch", '"patient/Observation.rc"'),
        ("openid foo/Observation.rs", '"foo/Observation.rs"'),
        ('openid pat"ient', '"pat\\"ient"'),
        ("openid a\\b", '"a\\\\b"'),
        ("patient/observation.rs", '"patient/observation.rs"'),
    ],
)
def test_parse_scopes_invalid_message_quotes_bad_token(text, named):
    with pytest.raises(ScopeError, match="invalid scope") as excinfo:
        parse_scopes(text)
    assert named in str(excinfo.value)


def test_parse_scope_empty_token_raises():
    with pytest.raises(ScopeError):
        parse_scope("")


def test_parse_scopes_more_than_200_tokens_raises():
    text = " ".join(f"vendor{i}" for i in range(201))
    with pytest.raises(ScopeError, match="too many scopes"):
        parse_scopes(text)


def test_parse_scopes_200_tokens_accepted():
    assert len(parse_scopes(" ".join(f"vendor{i}" for i in range(200)))) == 200


def test_parse_scopes_text_over_8000_chars_raises():
    with pytest.raises(ScopeError, match="too long"):
        parse_scopes("a" * 8001)


def test_parse_scopes_text_of_8000_chars_accepted():
    assert [s.kind for s in parse_scopes("a" * 8000)] == ["other"]


def test_scope_error_is_value_error():
    assert issubclass(ScopeError, ValueError)


# --- to_v2 and covers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "v2"),
    [
        ("patient/Observation.read", "patient/Observation.rs"),
        ("user/Appointment.write", "user/Appointment.cud"),
        ("patient/*.*", "patient/*.cruds"),
        ("system/*.cruds", "system/*.cruds"),
        (f"patient/Observation.rs?category={LAB}", f"patient/Observation.rs?category={LAB}"),
    ],
)
def test_to_v2_maps_v1_suffixes(text, v2):
    assert res(text).to_v2() == v2


@pytest.mark.parametrize(
    ("outer", "inner", "expected"),
    [
        ("patient/Observation.rs", "patient/Observation.r", True),
        ("patient/Observation.rs", "patient/Observation.rs", True),
        ("patient/Observation.r", "patient/Observation.rs", False),
        ("patient/*.rs", "patient/Condition.rs", True),
        ("patient/Condition.rs", "patient/*.rs", False),
        ("user/*.rs", "patient/Observation.rs", False),
        ("patient/Observation.read", "patient/Observation.rs", True),
        ("patient/Observation.rs", "patient/Observation.read", True),
        ("patient/*.*", "patient/Encounter.cud", True),
        ("patient/Observation.rs", f"patient/Observation.rs?category={LAB}", True),
        (f"patient/Observation.rs?category={LAB}", "patient/Observation.rs", False),
        (f"patient/Observation.rs?category={LAB}", f"patient/Observation.r?category={LAB}", True),
        (
            f"patient/Observation.rs?category={LAB}",
            f"patient/Observation.rs?category={LAB}&code=http://loinc.org|2339-0",
            True,
        ),
        (
            f"patient/Observation.rs?category={LAB}",
            f"patient/Observation.rs?category={VITALS}",
            False,
        ),
        ("patient/Observation.rs", "patient/Condition.rs", False),
    ],
)
def test_covers_table(outer, inner, expected):
    assert res(outer).covers(res(inner)) is expected


# --- narrow -----------------------------------------------------------------------------


def test_narrow_keeps_covered_resource_scopes_as_requested():
    requested = parse_scopes(
        "patient/Observation.read patient/Condition.rs patient/Encounter.c "
        f"patient/Observation.rs?category={LAB}"
    )
    allowed = parse_scopes("patient/*.rs")
    assert [s.raw for s in narrow(requested, allowed)] == [
        "patient/Observation.read",
        "patient/Condition.rs",
        f"patient/Observation.rs?category={LAB}",
    ]


def test_narrow_drops_broader_than_registered_granular():
    requested = parse_scopes(f"patient/Observation.rs patient/Observation.rs?category={LAB}")
    allowed = parse_scopes(f"patient/Observation.rs?category={LAB}")
    assert [s.raw for s in narrow(requested, allowed)] == [f"patient/Observation.rs?category={LAB}"]


def test_narrow_drops_context_mismatch():
    requested = parse_scopes("user/Observation.rs system/Observation.rs")
    allowed = parse_scopes("patient/*.cruds")
    assert narrow(requested, allowed) == []


def test_narrow_non_resource_needs_exact_match():
    requested = parse_scopes("openid fhirUser offline_access launch introspect")
    allowed = parse_scopes("openid launch online_access introspect")
    assert [s.raw for s in narrow(requested, allowed)] == ["openid", "launch", "introspect"]


def test_narrow_launch_context_ignores_role():
    requested = parse_scopes(
        "launch/list?role=https://example.org/med-list-at-home launch/patient launch/encounter"
    )
    allowed = parse_scopes("launch/list launch/patient?role=https://example.org/r")
    assert [s.raw for s in narrow(requested, allowed)] == [
        "launch/list?role=https://example.org/med-list-at-home",
        "launch/patient",
    ]


def test_narrow_does_not_treat_launch_as_launch_context():
    assert narrow(parse_scopes("launch/patient"), parse_scopes("launch")) == []


# --- is_subset --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "granted", "expected"),
    [
        ("patient/Observation.rs", "patient/Observation.rs openid", True),
        ("patient/Observation.r", "patient/Observation.rs", True),
        ("patient/Observation.read", "patient/Observation.rs", True),
        ("patient/Observation.rs", "patient/Observation.read", True),
        ("patient/Observation.rs", "patient/*.rs", True),
        (f"patient/Observation.rs?category={LAB}", "patient/Observation.rs", True),
        ("patient/Observation.rs", f"patient/Observation.rs?category={LAB}", False),
        ("patient/Observation.cruds", "patient/Observation.rs", False),
        ("openid fhirUser", "openid fhirUser patient/*.rs", True),
        ("openid offline_access", "openid patient/*.rs", False),
        ("", "openid", True),
        ("launch/patient", "launch/patient", True),
        ("launch/patient?role=x", "launch/patient", False),
        ("user/Observation.rs", "patient/Observation.rs", False),
    ],
)
def test_is_subset_table(requested, granted, expected):
    assert is_subset(requested, granted) is expected


def test_is_subset_invalid_requested_raises():
    with pytest.raises(ScopeError):
        is_subset("patient/Observation.dus", "patient/*.*")


# --- property tests -----------------------------------------------------------------------

SCOPE_TOKEN_CHARS = "".join(chr(c) for c in [0x21, *range(0x23, 0x5C), *range(0x5D, 0x7F)])
PARAM_VALUE_CHARS = SCOPE_TOKEN_CHARS.replace("&", "")

contexts = st.sampled_from(["patient", "user", "system"])
UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
LETTERS = UPPER + UPPER.lower()
resource_types = st.one_of(
    st.just("*"),
    st.sampled_from(["Observation", "Condition", "Patient", "Encounter"]),
    st.builds(
        operator.add, st.sampled_from(UPPER), st.text(alphabet=LETTERS, min_size=1, max_size=12)
    ),
)
v2_permissions = st.sets(st.sampled_from("cruds"), min_size=1).map(
    lambda letters: "".join(c for c in "cruds" if c in letters)
)
param_lists = st.lists(
    st.tuples(
        st.sampled_from(["category", "code", "_security", "patient.birthdate", "code:in"]),
        st.text(alphabet=PARAM_VALUE_CHARS, min_size=1, max_size=20),
    ),
    max_size=3,
)


@st.composite
def v1_scopes(draw):
    context, rtype = draw(contexts), draw(resource_types)
    return f"{context}/{rtype}.{draw(st.sampled_from(['read', 'write', '*']))}"


@st.composite
def v2_scopes(draw):
    text = f"{draw(contexts)}/{draw(resource_types)}.{draw(v2_permissions)}"
    params = draw(param_lists)
    if params:
        text += "?" + "&".join(f"{name}={value}" for name, value in params)
    return text


other_scopes = st.one_of(
    st.sampled_from(
        ["launch", "openid", "fhirUser", "profile", "email", "offline_access", "online_access"]
    ),
    st.builds(
        operator.add,
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12).map(
            "launch/".__add__
        ),
        st.sampled_from(["", "?role=https://example.org/role", "?role=friend"]),
    ),
    st.builds(
        operator.add,
        st.sampled_from("abcdefghijklmnopqrstuvwxyz"),
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_.:", max_size=15),
    ),
)
valid_scopes = st.one_of(v1_scopes(), v2_scopes(), other_scopes)


@settings(max_examples=200, deadline=None)
@given(
    tokens=st.lists(valid_scopes, min_size=0, max_size=8),
    gaps=st.lists(st.integers(min_value=1, max_value=3), min_size=9, max_size=9),
    lead=st.integers(min_value=0, max_value=2),
)
def test_property_round_trip_of_generated_valid_scopes(tokens, gaps, lead):
    text = " " * lead + "".join(tok + " " * gap for tok, gap in zip(tokens, gaps, strict=False))
    expected = " ".join(dict.fromkeys(tokens))
    scopes = parse_scopes(text)
    assert format_scopes(scopes) == expected
    assert [s.raw for s in scopes] == list(dict.fromkeys(tokens))


@settings(max_examples=200, deadline=None)
@given(v2_scopes())
def test_property_v2_resource_scope_fields_round_trip(text):
    resource = res(text)
    assert resource.version == 2
    assert resource.to_v2() == text


@settings(max_examples=200, deadline=None)
@given(v1_scopes())
def test_property_v1_and_its_v2_mapping_cover_each_other(text):
    v1 = res(text)
    v2 = res(v1.to_v2())
    assert v1.version == 1
    assert v2.version == 2
    assert v1.covers(v2)
    assert v2.covers(v1)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.text(max_size=200),
        st.text(alphabet=SCOPE_TOKEN_CHARS + ' "\\\t', max_size=120),
        st.lists(
            st.one_of(
                valid_scopes,
                st.sampled_from(["patient/", "user/", "system/", "launch/", "?", "&", "=", "."]),
                st.text(alphabet="cruds*?&=|.rwiteadOb/ ", max_size=12),
            ),
            max_size=6,
        ).map("".join),
    )
)
def test_property_parse_scopes_arbitrary_text_returns_or_raises_scope_error(text):
    try:
        scopes = parse_scopes(text)
    except ScopeError:
        return
    assert all(isinstance(s, Scope) for s in scopes)
    assert format_scopes(scopes) == " ".join(dict.fromkeys(t for t in text.split(" ") if t))
