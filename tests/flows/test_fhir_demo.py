"""The demo FHIR server (authserver.demo.fhir) in front of a live authorization server.

Both run in this process over real HTTP; the two-process version is tests/e2e.
FHIR R4 read/search, SMART scopes at the resource server, CapabilityStatement oauth-uris.
"""

from __future__ import annotations

import threading

import pytest
import requests
from werkzeug.serving import make_server

from authserver.demo.fhir import create_fhir_app
from authserver.demo.fhir_data import PATIENTS
from tests.flows.test_introspection import resource_server
from tests.helpers import FHIR_BASE, OAuthFlow, make_client, make_user

LAB = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"


@pytest.fixture
def fhir_server(base_url):
    """Start demo FHIR servers for the live issuer; yields a factory(introspection=None)."""
    servers = []

    def start(introspection: dict | None = None, fhir_base: str = FHIR_BASE) -> str:
        server = make_server("127.0.0.1", 0, create_fhir_app(base_url, fhir_base,
                                                             introspection), threaded=True)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/fhir"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def patient_token(app, base_url) -> dict:
    make_user(app)
    client = make_client(app)
    return {"token": OAuthFlow(base_url, client, requests.Session()).run(), "client": client}


def get(url: str, token: str | None = None, headers: dict | None = None,
        **kw) -> requests.Response:
    headers = dict(headers or {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.get(url, headers=headers, timeout=10, **kw)


def ids(bundle: dict) -> list[str]:
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    assert bundle["total"] == len(bundle.get("entry", []))
    return sorted(e["resource"]["id"] for e in bundle.get("entry", []))


def test_demo_patients_are_the_documented_ones():
    assert {pid: f"{f}, {g}" for pid, (f, g, *_) in PATIENTS.items()} == {
        "p1": "Example, Alice", "p2": "Sample, Bob", "p3": "Test, Carol"}


def test_metadata_names_the_authorization_servers_endpoints(fhir_server, base_url):
    fhir = fhir_server()
    resp = get(fhir + "/metadata")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/fhir+json"
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    cs = resp.json()
    assert cs["resourceType"] == "CapabilityStatement" and cs["fhirVersion"] == "4.0.1"
    security = cs["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    uris = {e["url"]: e["valueUri"] for e in security["extension"][0]["extension"]}
    smart = requests.get(base_url + "/.well-known/smart-configuration").json()
    # Inferno: the oauth-uris values must be identical to the well-known ones.
    assert uris == {"authorize": smart["authorization_endpoint"],
                    "token": smart["token_endpoint"],
                    "introspect": smart["introspection_endpoint"],
                    "revoke": smart["revocation_endpoint"],
                    "manage": smart["management_endpoint"],
                    "register": smart["registration_endpoint"]}


def test_smart_configuration_is_served_at_the_fhir_base(fhir_server, base_url):
    resp = get(fhir_server() + "/.well-known/smart-configuration",
               headers={"Accept": "text/html"})
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert resp.json() == requests.get(base_url + "/.well-known/smart-configuration").json()


def test_patient_scope_reads_and_searches_the_patient_in_context(fhir_server, patient_token):
    fhir, at = fhir_server(), patient_token["token"]["access_token"]
    patient = get(fhir + "/Patient/p1", at)
    assert patient.status_code == 200 and patient.json()["name"][0]["family"] == "Example"
    assert ids(get(fhir + "/Observation", at).json()) == [
        "obs-p1-glucose", "obs-p1-hba1c", "obs-p1-heart-rate", "obs-p1-waist",
        "obs-p1-weight"]
    assert ids(get(fhir + "/Observation", at, params={"category": LAB}).json()) == [
        "obs-p1-glucose", "obs-p1-hba1c"]
    assert ids(get(fhir + "/Observation", at, params={"code": "http://loinc.org|8867-4",
                                                      "patient": "Patient/p1"}).json()) == [
        "obs-p1-heart-rate"]
    assert ids(get(fhir + "/Condition", at).json()) == ["cond-p1-1", "cond-p1-2"]
    assert ids(get(fhir + "/Encounter", at, params={"subject": "p1"}).json()) == ["enc-p1-1"]
    assert ids(get(fhir + "/Patient", at).json()) == ["p1"]


def test_patient_scope_never_returns_another_patients_data(fhir_server, patient_token):
    fhir, at = fhir_server(), patient_token["token"]["access_token"]
    assert ids(get(fhir + "/Observation", at, params={"patient": "p2"}).json()) == []
    assert ids(get(fhir + "/Patient", at, params={"_id": "p2,p3"}).json()) == []
    for path in ("/Patient/p2", "/Observation/obs-p3-glucose", "/Condition/cond-p2-1",
                 "/Practitioner/pr1"):
        resp = get(fhir + path, at)
        assert resp.status_code == 404, path
        assert resp.json()["resourceType"] == "OperationOutcome"


def test_search_by_post_form(fhir_server, patient_token):
    fhir, at = fhir_server(), patient_token["token"]["access_token"]
    resp = requests.post(fhir + "/Observation/_search", data={"_id": "obs-p1-weight"},
                         headers={"Authorization": f"Bearer {at}"})
    assert resp.status_code == 200 and ids(resp.json()) == ["obs-p1-weight"]


def test_granular_scope_limits_results_to_its_category(app, base_url, fhir_server):
    make_user(app)
    scope = f"launch/patient patient/Observation.rs?category={LAB}"
    client = make_client(app, scope=scope)
    at = OAuthFlow(base_url, client, requests.Session(), scope=scope).run()["access_token"]
    fhir = fhir_server()
    assert ids(get(fhir + "/Observation", at).json()) == ["obs-p1-glucose", "obs-p1-hba1c"]
    assert get(fhir + "/Observation/obs-p1-weight", at).status_code == 404
    denied = get(fhir + "/Patient/p1", at)
    assert denied.status_code == 403
    assert denied.json()["issue"][0]["code"] == "forbidden"
    assert 'error="insufficient_scope"' in denied.headers["WWW-Authenticate"]


def test_system_scope_sees_every_patient(app, base_url, fhir_server):
    c = make_client(app, auth_method="client_secret_basic", scope="system/*.rs",
                    grant_types=["client_credentials"], redirect_uris=[])
    at = requests.post(base_url + "/token", auth=(c["client_id"], c["client_secret"]), data={
        "grant_type": "client_credentials", "scope": "system/Patient.rs"}).json()["access_token"]
    fhir = fhir_server()
    assert ids(get(fhir + "/Patient", at).json()) == ["p1", "p2", "p3"]
    assert ids(get(fhir + "/Patient", at, params={"name": "carol"}).json()) == ["p3"]
    assert get(fhir + "/Observation", at).status_code == 403


def test_requests_without_a_usable_token_are_401(fhir_server, patient_token, base_url):
    fhir = fhir_server()
    missing = get(fhir + "/Patient/p1")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == f'Bearer realm="{FHIR_BASE}"'
    assert missing.json()["resourceType"] == "OperationOutcome"
    for bad in ("garbage", patient_token["token"]["id_token"],
                patient_token["token"]["access_token"] + "x"):
        resp = get(fhir + "/Patient/p1", bad)
        assert resp.status_code == 401
        assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]


def test_token_for_another_fhir_server_is_401(fhir_server, patient_token):
    fhir = fhir_server(fhir_base="https://fhir.example.org/r4")
    resp = get(fhir.replace("/fhir", "/r4") + "/Patient/p1",
               patient_token["token"]["access_token"])
    assert resp.status_code == 401
    assert "another server" in resp.headers["WWW-Authenticate"]


def test_local_mode_accepts_a_revoked_token_introspection_mode_does_not(
        app, fhir_server, patient_token, base_url):
    token, client = patient_token["token"], patient_token["client"]
    rs_id, rs_secret = resource_server(app)
    local = fhir_server()
    strict = fhir_server({"client_id": rs_id, "client_secret": rs_secret})
    assert get(strict + "/Patient/p1", token["access_token"]).status_code == 200
    assert requests.post(base_url + "/revoke", data={
        "token": token["access_token"], "client_id": client["client_id"]}).status_code == 200
    # A JWT checked only locally stays valid until it expires: that is what
    # introspection mode is for.
    assert get(local + "/Patient/p1", token["access_token"]).status_code == 200
    resp = get(strict + "/Patient/p1", token["access_token"])
    assert resp.status_code == 401
    assert "not active" in resp.json()["issue"][0]["diagnostics"]


def test_introspection_mode_with_wrong_credentials_is_503(fhir_server, patient_token):
    strict = fhir_server({"client_id": "nobody", "client_secret": "nothing"})
    resp = get(strict + "/Patient/p1", patient_token["token"]["access_token"])
    assert resp.status_code == 503
    assert resp.json()["issue"][0]["code"] == "transient"


def test_unknown_type_method_and_path(fhir_server, patient_token):
    fhir, at = fhir_server(), patient_token["token"]["access_token"]
    assert get(fhir + "/MedicationRequest", at).status_code == 404
    assert requests.post(fhir + "/Patient", json={}).status_code == 405
    assert get(fhir.replace("/fhir", "/nowhere")).status_code == 404
    pre = requests.options(fhir + "/Patient/p1", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "GET"})
    assert pre.status_code == 204
    assert "Authorization" in pre.headers["Access-Control-Allow-Headers"]
    assert pre.headers["Access-Control-Allow-Origin"] == "*"
