"""A clinician's standalone launch: password, TOTP, the patient picker, consent, tokens.

SMART App Launch 2.2, scopes-and-launch-context "Standalone apps"
(https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html#standalone-apps):
``launch/patient`` — "Need patient context at launch time"; for a ``patient/`` scope "the EHR
SHALL establish a patient in context" (we infer ``launch/patient``). ``launch/encounter`` in a
standalone launch is dropped from the grant (we have no encounter picker; RFC 6749 §3.3).
"""

from __future__ import annotations

import html
import re

import pytest
import requests

from tests.helpers import (
    CLINICIAN_SCOPES,
    FHIR_BASE,
    OAuthFlow,
    add_patients,
    csrf_of,
    make_client,
    make_clinician,
    make_user,
    pick_patient,
    picker_patients,
    totp_code,
    verify_jwt,
)

REGISTRY = [("p1", "Smith, Anna", "1980-02-03"), ("p2", "Smithers, Bob", "1975-11-30"),
            ("p3", "Jones, Carla", "1980-02-03")]


@pytest.fixture
def clinic(app, base_url):
    add_patients(app, *REGISTRY)
    user = make_clinician(app)
    client = make_client(app, scope=CLINICIAN_SCOPES + " launch/encounter user/*.rs "
                         "patient/Observation.rs offline_access")
    return {"secret": user["secret"], "client": client}


def _to_picker(base_url: str, clinic: dict, scope: str = CLINICIAN_SCOPES) -> OAuthFlow:
    flow = OAuthFlow(base_url, clinic["client"], requests.Session(), scope=scope)
    flow.authorize()
    flow.follow()
    flow.login("drsmith")
    flow.totp(totp_code(clinic["secret"]))
    return flow


def _search(flow: OAuthFlow, **params: str) -> requests.Response:
    req = re.search(r'name="req" value="([^"]*)"', flow.last.text).group(1)
    resp = flow.http.get(flow.base_url + "/authorize/patient",
                         params={"req": html.unescape(req), **params})
    assert resp.status_code == 200
    flow.last = resp
    return resp


def test_clinician_standalone_launch_with_totp_and_picker(clinic, base_url):
    flow = _to_picker(base_url, clinic)
    page = flow.last
    assert page.url.startswith(base_url + "/authorize/patient?"), page.url
    assert picker_patients(page.text) == ["p3", "p1", "p2"]  # by family name
    assert _search(flow, q="smi").status_code == 200
    assert picker_patients(flow.last.text) == ["p1", "p2"]
    _search(flow, q="SMITH", birth_date="1980-02-03")
    assert picker_patients(flow.last.text) == ["p1"]
    _search(flow, birth_date="1980-02-03")
    assert picker_patients(flow.last.text) == ["p3", "p1"]
    _search(flow, q="p2")  # the exact id
    assert picker_patients(flow.last.text) == ["p2"]
    pick_patient(flow, "p2")
    assert 'name="decision"' in flow.last.text  # consent comes after the picker
    assert sorted(flow.consent_values()) == sorted(CLINICIAN_SCOPES.split())
    # the clinician's page names the chosen patient, never "your" record
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", "", flow.last.text)).split())
    assert "For the record of Bob Smithers, born 1975-11-30" in text
    assert "Read all of Bob Smithers's health records" in text
    assert "your health records" not in text
    flow.consent()
    resp = flow.token(flow.code())
    assert resp.status_code == 200, resp.text
    token = resp.json()
    assert token["patient"] == "p2"
    assert token["scope"] == CLINICIAN_SCOPES
    claims = verify_jwt(base_url, token["access_token"], audience=FHIR_BASE, typ="at+jwt")
    assert claims["patient"] == "p2"
    assert claims["fhirUser"] == FHIR_BASE + "/Practitioner/pr1"
    assert "need_patient_banner" not in token and "encounter" not in token


def test_picker_shown_for_patient_scope_without_launch_patient(clinic, base_url):
    flow = _to_picker(base_url, clinic, scope="openid patient/Patient.rs")
    assert flow.last.url.startswith(base_url + "/authorize/patient?")
    pick_patient(flow, "p1")
    flow.consent()
    token = flow.token(flow.code()).json()
    assert token["patient"] == "p1"
    assert token["scope"] == "openid patient/Patient.rs"


def test_picker_markup_is_keyboard_and_screen_reader_friendly(clinic, base_url):
    page = _to_picker(base_url, clinic).last.text
    assert 'role="search"' in page
    for field in ("q", "birth_date"):
        assert f'<label for="{field}">' in page and f'id="{field}"' in page
    assert '<p id="result-count" role="status">3 patients found</p>' in page
    assert "For <strong>Test App</strong> · Signed in as" in page
    ids = re.findall(r'type="radio" name="patient" value="[^"]*" id="([^"]+)"', page)
    assert len(ids) == 3
    for radio_id in ids:  # every radio has its own label: name, birth date and id
        assert f'<label for="{radio_id}">' in page
    assert "Smith, Anna, born 1980-02-03" in page
    assert " checked" not in page  # no patient chosen by default
    assert 'type="submit" class="primary" id="choose"' in page


def test_picker_search_without_match_offers_nothing(clinic, base_url):
    flow = _to_picker(base_url, clinic)
    _search(flow, q="nobody")
    assert picker_patients(flow.last.text) == []
    assert '<p id="result-count" role="status">0 patients match your search</p>' in \
        flow.last.text
    assert "Try another name, id or birth date." in flow.last.text
    assert 'id="choose"' not in flow.last.text


def test_picker_refuses_unknown_patient(clinic, base_url):
    flow = _to_picker(base_url, clinic)
    picker = flow.last
    resp = pick_patient(flow, "p404")
    assert resp.status_code == 400 and "Unknown patient" in resp.text
    flow.last = picker
    resp = pick_patient(flow, "p1")  # the request is still there: a real choice works
    assert 'name="decision"' in resp.text


def test_picker_not_shown_to_patient_user(clinic, app, base_url):
    make_user(app)  # alice, Patient/p1
    flow = OAuthFlow(base_url, clinic["client"], requests.Session(), scope=CLINICIAN_SCOPES)
    flow.authorize()
    flow.follow()
    flow.login("alice")
    assert 'name="decision"' in flow.last.text  # her own record: no picker
    req = re.search(r'name="req" value="([^"]*)"', flow.last.text).group(1)
    page = flow.http.get(base_url + "/authorize/patient", params={"req": html.unescape(req)})
    assert page.status_code == 403
    assert "Smithers" not in page.text and "Jones" not in page.text
    resp = flow.http.post(base_url + "/authorize/patient", data={
        "csrf_token": csrf_of(flow.last.text), "req": html.unescape(req), "patient": "p3"},
        allow_redirects=False)
    assert resp.status_code == 403
    flow.last = flow.http.get(base_url + "/authorize/continue",
                              params={"req": html.unescape(req)})
    flow.consent()
    assert flow.token(flow.code()).json()["patient"] == "p1"


def test_picker_needs_a_pending_request_of_the_user(clinic, base_url):
    flow = _to_picker(base_url, clinic)
    page = flow.http.get(base_url + "/authorize/patient", params={"req": "made-up"})
    assert page.status_code == 400 and "Smith" not in page.text
    # Another user cannot use this clinician's request.
    anon = requests.Session()
    req = re.search(r'name="req" value="([^"]*)"', flow.last.text).group(1)
    page = anon.get(base_url + "/authorize/patient", params={"req": html.unescape(req)},
                    allow_redirects=False)
    assert page.status_code == 303 and page.headers["Location"].startswith("/login")


def test_developer_cannot_choose_a_patient(clinic, app, base_url):
    make_user(app, "dev", "developer", fhir_user=None)
    flow = OAuthFlow(base_url, clinic["client"], requests.Session(), scope=CLINICIAN_SCOPES)
    flow.authorize()
    flow.follow()
    page = flow.login("dev")
    # The ceiling leaves a developer identity scopes only: no picker, no patient context.
    assert page.status_code == 200 and 'name="patient"' not in page.text
    assert all(v in ("openid", "fhirUser", "profile", "email") for v in flow.consent_values())
    flow.consent("allow")
    token = flow.token(flow.code()).json()
    assert "patient" not in token and "patient/" not in token["scope"]


def test_standalone_launch_encounter_is_dropped_not_refused(clinic, base_url):
    scope = CLINICIAN_SCOPES + " launch/encounter"
    flow = _to_picker(base_url, clinic, scope=scope)
    pick_patient(flow, "p3")
    assert "launch/encounter" not in flow.consent_values()
    flow.consent()
    token = flow.token(flow.code()).json()
    assert token["scope"] == CLINICIAN_SCOPES  # granted scope says it was not granted
    assert token["patient"] == "p3" and "encounter" not in token


def test_clinician_user_scopes_granted_without_picker(clinic, base_url):
    flow = OAuthFlow(base_url, clinic["client"], requests.Session(),
                     scope="openid fhirUser user/*.rs")
    flow.authorize()
    flow.follow()
    flow.login("drsmith")
    flow.totp(totp_code(clinic["secret"]))
    assert 'name="decision"' in flow.last.text
    flow.consent()
    token = flow.token(flow.code()).json()
    assert token["scope"] == "openid fhirUser user/*.rs" and "patient" not in token


def test_picker_counts_in_good_grammar_and_says_when_more_are_hidden(app, clinic, base_url):
    flow = _to_picker(base_url, clinic)
    _search(flow, q="p2")
    assert '<p id="result-count" role="status">1 patient matches your search</p>' in \
        flow.last.text
    add_patients(app, *[(f"x{i:02d}", f"Crowd, Person{i:02d}", None) for i in range(60)])
    _search(flow, q="crowd")
    assert picker_patients(flow.last.text) == [f"x{i:02d}" for i in range(50)]
    assert "50+ patients match your search" in flow.last.text
    assert "Showing the first 50. Narrow your search" in flow.last.text
