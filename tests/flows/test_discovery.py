"""Discovery documents, JWKS, key rotation and health, over real HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import jwt
import pytest
import requests

#: SMART App Launch 2.2 capability names (conformance.html#capabilities).
SMART_CAPABILITIES = {
    "launch-ehr", "launch-standalone", "authorize-post", "client-public",
    "client-confidential-symmetric", "client-confidential-asymmetric", "sso-openid-connect",
    "context-banner", "context-style", "context-ehr-patient", "context-ehr-encounter",
    "context-standalone-patient", "context-standalone-encounter", "permission-offline",
    "permission-online", "permission-patient", "permission-user", "permission-v1",
    "permission-v2", "smart-app-state",
}
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k"}


@pytest.mark.parametrize("accept", [None, "text/html", "application/xml", "*/*"])
def test_smart_configuration_is_json_whatever_accept(base_url, accept):
    headers = {"Accept": accept} if accept else {}
    resp = requests.get(base_url + "/.well-known/smart-configuration", headers=headers)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert "max-age" in resp.headers["Cache-Control"]


def test_smart_configuration_has_required_fields(base_url):
    doc = requests.get(base_url + "/.well-known/smart-configuration").json()
    assert doc["issuer"] == base_url  # sso-openid-connect => issuer + jwks_uri
    assert doc["jwks_uri"] == base_url + "/.well-known/jwks.json"
    assert doc["authorization_endpoint"] == base_url + "/authorize"
    assert doc["token_endpoint"] == base_url + "/token"
    assert doc["code_challenge_methods_supported"] == ["S256"]  # never "plain"
    assert "authorization_code" in doc["grant_types_supported"]
    assert doc["response_types_supported"] == ["code"]
    caps = set(doc["capabilities"])
    assert caps <= SMART_CAPABILITIES, caps - SMART_CAPABILITIES
    assert {"launch-standalone", "authorize-post", "client-public",
            "client-confidential-symmetric", "sso-openid-connect", "permission-v1",
            "permission-v2", "permission-patient", "permission-offline",
            "context-standalone-patient"} <= caps
    for key, value in doc.items():
        if key.endswith("_endpoint") or key.endswith("_uri"):
            assert value.startswith(base_url + "/"), key  # absolute URLs


def test_openid_configuration_matches_issuer(base_url):
    doc = requests.get(base_url + "/.well-known/openid-configuration").json()
    assert doc["issuer"] == base_url
    assert doc["jwks_uri"] == base_url + "/.well-known/jwks.json"
    assert "RS256" in doc["id_token_signing_alg_values_supported"]
    assert doc["subject_types_supported"] == ["public"]
    assert doc["response_types_supported"] == ["code"]
    assert doc["authorization_response_iss_parameter_supported"] is True


def test_jwks_has_public_keys_only(base_url):
    jwks = requests.get(base_url + "/.well-known/jwks.json").json()
    assert any(k["kty"] == "RSA" and k["alg"] == "RS256" for k in jwks["keys"])
    for key in jwks["keys"]:
        assert not PRIVATE_MEMBERS & key.keys()
        assert key["kid"] and key["use"] == "sig"


def test_rotation_keeps_old_key_published_and_signs_with_new(app, base_url):
    from authserver.oauth import keystore, tokens

    with app.app_context():
        old_token = keystore.get_signer().sign({"iss": base_url, "sub": "x"}, typ="at+jwt")
        old_kid = jwt.get_unverified_header(old_token)["kid"]
        new_kids = keystore.rotate()
        new_token = keystore.get_signer().sign({"iss": base_url, "sub": "y"}, typ="at+jwt")
        assert tokens  # the issuing module uses the same keystore
    new_kid = jwt.get_unverified_header(new_token)["kid"]
    assert new_kid in new_kids and new_kid != old_kid
    jwks = requests.get(base_url + "/.well-known/jwks.json").json()
    kids = {k["kid"] for k in jwks["keys"]}
    assert {old_kid, new_kid} <= kids
    for token in (old_token, new_token):
        header = jwt.get_unverified_header(token)
        key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
        jwt.decode(token, jwt.PyJWK(key).key, algorithms=[header["alg"]],
                   options={"verify_aud": False})


def test_retired_key_leaves_jwks_after_tokens_expire(app):
    from datetime import UTC, datetime, timedelta

    from authserver.oauth import keystore

    with app.app_context():
        old = {k["kid"] for k in keystore.list_keys() if k["active"]}
        keystore.rotate()
        later = datetime.now(UTC) + timedelta(seconds=app.config["ACCESS_TOKEN_LIFETIME"] + 5)
        published = {k["kid"] for k in keystore.public_jwks(now=later)["keys"]}
    assert old.isdisjoint(published)


def test_health_reports_database(base_url):
    resp = requests.get(base_url + "/health")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok", "database": "ok"}


def test_static_well_known_copies_match_served_documents(tmp_path):
    """`.well-known/` in the repository is what `authserver export-well-known` writes for
    the default configuration: regenerate it when this fails."""
    from authserver.app import create_app
    from authserver.oauth import discovery

    repo = Path(__file__).resolve().parents[2] / ".well-known"
    app = create_app({"INSTANCE_PATH": str(tmp_path), "ISSUER": "http://127.0.0.1:8000",
                      "FHIR_BASE_URL": "http://127.0.0.1:8001/fhir",
                      "DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3"})
    with app.app_context():
        served = {"smart-configuration": discovery.smart_document(),
                  "openid-configuration": discovery.openid_document()}
    for name, doc in served.items():
        assert json.loads((repo / name).read_text()) == doc, (
            f".well-known/{name} drifted: run `authserver export-well-known`")
