"""Who may see what: every grant stays under the person's scope ceiling (issue 11, point 1).

Written as the attacks were: an app registered (by anyone) for broad ``user/`` or
``system/`` scopes, used by a patient, an administrator or a developer, must yield no more
than their role allows — checked at the token response and at the demo FHIR server.
"""

from __future__ import annotations

import requests

from tests.flows.test_fhir_demo import (
    fhir_server,  # noqa: F401  (fixture)
    get,
)
from tests.helpers import (
    FHIR_BASE,
    OAuthFlow,
    location_query,
    make_client,
    make_clinician,
    make_user,
    sign_in_admin,
    totp_code,
    verify_jwt,
)

BROAD = ("openid fhirUser profile email launch/patient offline_access "
         "user/*.rs user/*.cruds patient/*.rs system/*.rs")


def _set_policy(app, scope: str, **who: str) -> None:
    from authserver.services import policies

    with app.app_context():
        policies.set_policy(scope, **who)


def test_patient_with_user_scope_app_reads_only_their_own_record(app, base_url, fhir_server):  # noqa: F811
    make_user(app)  # alice, Patient/p1
    client = make_client(app, scope="openid fhirUser launch/patient user/*.rs")
    flow = OAuthFlow(base_url, client, requests.Session(),
                     scope="openid fhirUser launch/patient user/*.rs")
    flow.authorize()
    flow.follow()
    flow.login()
    assert "user/*.rs" not in flow.consent_values()
    flow.consent("allow")
    token = flow.token(flow.code()).json()
    assert token["scope"] == "openid fhirUser launch/patient"
    fhir = fhir_server()
    for pid in ("p1", "p2", "p3"):
        assert get(f"{fhir}/Patient/{pid}", token["access_token"]).status_code == 403
    assert get(f"{fhir}/Observation", token["access_token"]).status_code == 403


def test_patient_grant_of_user_and_patient_scopes_keeps_only_patient_ones(app, base_url,
                                                                          fhir_server):  # noqa: F811
    make_user(app)
    client = make_client(app, scope=BROAD)
    token = OAuthFlow(base_url, client, requests.Session(), scope=BROAD).run()
    assert token["scope"].split() == ["openid", "fhirUser", "profile", "email",
                                      "launch/patient", "offline_access", "patient/*.rs"]
    assert token["patient"] == "p1"
    fhir = fhir_server()
    assert get(f"{fhir}/Patient/p1", token["access_token"]).status_code == 200
    for pid in ("p2", "p3"):
        assert get(f"{fhir}/Patient/{pid}", token["access_token"]).status_code == 404
    found = get(f"{fhir}/Observation", token["access_token"]).json()
    assert found["entry"] and all(e["resource"]["subject"]["reference"] == "Patient/p1"
                                  for e in found["entry"])


def test_admin_grant_holds_identity_scopes_only(app, base_url):
    http = sign_in_admin(app, base_url)  # signed in with password + TOTP
    client = make_client(app, scope=BROAD)
    flow = OAuthFlow(base_url, client, http, scope=BROAD)
    flow.authorize()
    flow.follow()
    assert flow.consent_values() == ["openid", "fhirUser", "profile", "email"]
    flow.consent("allow")
    token = flow.token(flow.code()).json()
    assert token["scope"] == "openid fhirUser profile email"
    assert "patient" not in token and "refresh_token" not in token


def test_developer_grant_holds_identity_scopes_only(app, base_url):
    make_user(app, "dev", role="developer", fhir_user=None)
    client = make_client(app, scope=BROAD)
    token = OAuthFlow(base_url, client, requests.Session(), scope=BROAD).run("dev")
    assert token["scope"] == "openid fhirUser profile email"


def test_developer_asking_data_scopes_only_is_denied(app, base_url):
    make_user(app, "dev", role="developer", fhir_user=None)
    client = make_client(app, scope="launch/patient patient/*.rs user/*.rs")
    flow = OAuthFlow(base_url, client, requests.Session(),
                     scope="launch/patient patient/*.rs user/*.rs")
    flow.authorize()
    flow.follow()
    resp = flow.login("dev")
    query = location_query(resp)
    assert query["error"] == "access_denied" and query["state"] == flow.state


def test_clinician_never_gets_system_scopes_in_a_user_grant(app, base_url):
    doc = make_clinician(app)
    client = make_client(app, scope="openid fhirUser user/*.rs system/*.rs system/*.cruds")
    token = OAuthFlow(base_url, client, requests.Session(),
                      scope="openid fhirUser user/*.rs system/*.rs").run(
        "drsmith", totp=totp_code(doc["secret"]))
    assert token["scope"] == "openid fhirUser user/*.rs"


def test_user_scope_token_always_carries_fhir_user(app, base_url):
    doc = make_clinician(app)
    client = make_client(app, scope="user/*.rs")
    token = OAuthFlow(base_url, client, requests.Session(), scope="user/*.rs",
                      nonce=None).run("drsmith", totp=totp_code(doc["secret"]))
    claims = verify_jwt(base_url, token["access_token"], audience=FHIR_BASE)
    assert claims["scope"] == "user/*.rs"
    assert claims["fhirUser"] == FHIR_BASE + "/Practitioner/pr1"


def test_role_ceiling_narrows_the_next_grant_and_the_next_refresh(app, base_url, fhir_server):  # noqa: F811
    doc = make_clinician(app)
    scope = "openid fhirUser offline_access user/*.rs"
    client = make_client(app, scope=scope)
    flow = OAuthFlow(base_url, client, requests.Session(), scope=scope)
    before = flow.run("drsmith", totp=totp_code(doc["secret"]))
    assert before["scope"] == scope
    _set_policy(app, "user/Patient.rs user/Appointment.rs", role="clinician")
    refreshed = flow.refresh(before["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["scope"] == (
        "openid fhirUser offline_access user/Patient.rs user/Appointment.rs")
    fhir = fhir_server()
    narrowed = refreshed.json()["access_token"]
    assert get(f"{fhir}/Patient/p2", narrowed).status_code == 200
    assert get(f"{fhir}/Observation", narrowed).status_code == 403
    after = OAuthFlow(base_url, client, requests.Session(), scope=scope).run(
        "drsmith", totp=totp_code(doc["secret"], ahead=1))
    assert after["scope"] == "openid fhirUser offline_access user/Patient.rs user/Appointment.rs"


def test_user_ceiling_replaces_the_role_ceiling(app, base_url):
    make_user(app)
    _set_policy(app, "patient/Observation.rs", role="patient")
    _set_policy(app, "patient/Patient.rs", username="alice")
    client = make_client(app)
    token = OAuthFlow(base_url, client, requests.Session(),
                      scope="openid launch/patient patient/*.rs").run()
    assert token["scope"] == "openid launch/patient patient/Patient.rs"


def test_cli_policy_set_and_show(app, base_url):
    from click.testing import CliRunner

    from authserver.cli import cli

    runner = CliRunner()
    env = {"AUTHSERVER_INSTANCE_PATH": app.config["INSTANCE_PATH"],
           "AUTHSERVER_DATABASE_URL": app.config["DATABASE_URL"],
           "AUTHSERVER_KEY_ENCRYPTION_KEY": app.config["KEY_ENCRYPTION_KEY"],
           "AUTHSERVER_SECRET_KEY": app.config["SECRET_KEY"]}
    res = runner.invoke(cli, ["policy", "set", "--role", "clinician",
                              "user/Patient.rs user/Appointment.rs"], env=env)
    assert res.exit_code == 0, res.output
    import json

    assert json.loads(res.stdout) == {"subject": "role:clinician",
                                      "scope": "user/Patient.rs user/Appointment.rs"}
    shown = json.loads(runner.invoke(cli, ["policy", "show"], env=env).stdout)
    assert shown["roles"]["clinician"]["policy"] == "user/Patient.rs user/Appointment.rs"
    assert "user/" not in shown["roles"]["patient"]["default"]
    bad = runner.invoke(cli, ["policy", "set", "--role", "clinician", "system/*.rs"], env=env)
    assert bad.exit_code != 0 and "system/" in bad.output
    bad = runner.invoke(cli, ["policy", "set", "--role", "patient", "user/*.rs"], env=env)
    assert bad.exit_code != 0


def test_picker_search_still_lists_patients_for_clinicians(app, base_url):
    """A clinician's standalone launch with patient/ scopes is untouched by the ceiling."""
    from tests.helpers import add_patients, pick_patient

    doc = make_clinician(app)
    add_patients(app, ("p2", "Sample, Bob", "1970-01-01"))
    client = make_client(app, scope="openid launch/patient patient/*.rs")
    flow = OAuthFlow(base_url, client, requests.Session(),
                     scope="openid launch/patient patient/*.rs")
    flow.authorize()
    flow.follow()
    flow.login("drsmith")
    flow.totp(totp_code(doc["secret"]))
    pick_patient(flow, "p2")
    flow.consent("allow")
    token = flow.token(flow.code()).json()
    assert token["patient"] == "p2" and token["scope"] == "openid launch/patient patient/*.rs"
