"""Usernames, FHIR ids and fhirUser references: NFKC-normalised and matched whole."""

import pytest

from authserver import identifiers


@pytest.mark.parametrize("raw", ["alice\n", "alice\r\n", "al ice", "", "a" * 151, "alice\x00",
                                 "Ａlice\n"])
def test_username_refuses_anything_but_the_whole_name(raw):
    assert identifiers.username(raw) is None


def test_username_is_nfkc_normalised_and_keyed_case_insensitively():
    assert identifiers.username("ａｌｉｃｅ") == "alice"  # full-width letters
    assert identifiers.username_key("Alice") == identifiers.username_key("ALICE") == "alice"
    assert identifiers.username_key("Straße") == identifiers.username_key("STRASSE")


@pytest.mark.parametrize("raw", ["p1\n", "p 1", "p/1", "x" * 65, ""])
def test_fhir_id_refuses_trailing_newline_and_bad_characters(raw):
    assert identifiers.fhir_id(raw) is None


def test_fhir_user_needs_a_person_type_and_a_whole_id():
    assert identifiers.fhir_user("Practitioner/pr1") == "Practitioner/pr1"
    assert identifiers.fhir_user("Ｐatient/p1") == "Patient/p1"
    assert identifiers.fhir_user("Patient/p1\n") is None
    assert identifiers.fhir_user("Observation/o1") is None


def test_client_ids_never_begin_like_a_command_line_option():
    """A client_id is typed after ``authserver client ...``: one beginning with ``-`` was
    read by click as an option (a CI failure, one registration in 64). 2,000 draws hold a
    leading ``-`` or ``_`` with near certainty if the generator allowed it."""
    from authserver import digests

    ids = [digests.new_identifier(18) for _ in range(2000)]
    assert all(i[0] not in "-_" for i in ids)
    assert all(len(i) == 24 for i in ids) and len(set(ids)) == len(ids)
