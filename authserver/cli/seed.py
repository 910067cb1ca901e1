"""Demo data for ``authserver demo``: users, patients and the demo app (idempotent), written
through the services and the store on the authorization server's side.

Run inside an application context. Nothing here is for production: the demo password is
public (it is printed, and it is in this file).

- patients p1, p2, p3 in the picker's registry (the same as the demo FHIR server's data);
- ``alice``: a patient, ``fhirUser`` Patient/p1 ("Example, Alice");
- ``drsmith``: a clinician, ``fhirUser`` Practitioner/pr1, with TOTP enrolled (the secret
  is shown on every start, so an authenticator app set up once keeps working);
- the demo app (:mod:`authserver.demo.app`): a public client whose redirect URI is the demo
  app's callback, and an EHR launch link for it (SMART EHR launch, single use, short lived).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import current_app

from authserver import audit, store
from authserver.auth import totp
from authserver.auth.session import totp_secret
from authserver.demo.app import CALLBACK_PATH, DEMO_APP_NAME, LAUNCH_PATH
from authserver.oauth.rfc7591 import normalize_metadata
from authserver.services import accounts, admin_console, launches
from authserver.services.registration import (
    client_origins,
    client_response,
    register_client,
)
from authserver.smart.client_types import AuthMethod, GrantType
from authserver.smart.roles import Role

__all__ = ["seed", "ehr_launch_link", "DEMO_PASSWORD", "DEMO_PATIENTS", "DEMO_APP_SCOPE",
           "PATIENT_USERNAME", "CLINICIAN_USERNAME"]

#: The demo users' password (public: this is a demo).
DEMO_PASSWORD = "smart-demo-password"
PATIENT_USERNAME = "alice"
CLINICIAN_USERNAME = "drsmith"
#: id -> ("Family, Given", birth date), as in :mod:`authserver.demo.fhir_data`.
DEMO_PATIENTS = {"p1": ("Example, Alice", "1984-03-12"),
                 "p2": ("Sample, Bob", "1971-11-02"),
                 "p3": ("Test, Carol", "1999-07-23")}
DEMO_APP_SCOPE = ("openid fhirUser launch launch/patient offline_access online_access "
                  "patient/*.rs user/*.rs patient/Observation.rs patient/Condition.rs")


def _user(username: str, role: str, fhir_user: str, name: str) -> Any:
    user = store.accounts.get_user_by_username(username)
    if user is None:
        accounts.create_user(username, role, password=DEMO_PASSWORD, fhir_user=fhir_user,
                             name=name)
        user = store.accounts.get_user_by_username(username)
    return user


def _clinician_totp() -> dict[str, str]:
    user = store.accounts.get_user_by_username(CLINICIAN_USERNAME)
    secret = totp_secret(user) if user is not None else None
    if not secret:
        return accounts.enrol_totp(CLINICIAN_USERNAME)
    return {"secret": secret, "otpauth_uri": totp.provisioning_uri(
        secret, CLINICIAN_USERNAME, current_app.config["TOTP_ISSUER"])}


@store.transaction()
def _demo_app(demo_app_url: str) -> dict[str, Any]:
    """Register the demo app, or bring an earlier registration up to date (same id)."""
    meta = {"client_name": DEMO_APP_NAME, "token_endpoint_auth_method": AuthMethod.NONE.value,
            "redirect_uris": [demo_app_url + CALLBACK_PATH],
            "launch_uris": [demo_app_url + LAUNCH_PATH],
            "grant_types": [GrantType.AUTHORIZATION_CODE.value, GrantType.REFRESH_TOKEN.value],
            "scope": DEMO_APP_SCOPE, "logo_uri": demo_app_url + "/logo.svg",
            "client_uri": demo_app_url + "/",
            "contacts": ["the authserver demo (authserver demo)"]}
    row = store.clients.app_named(DEMO_APP_NAME)
    if row is None:
        row, _ = register_client(meta, verified=True)
        audit.record("client.created", client_id=row.client_id, via="demo")
    else:
        merged = normalize_metadata(meta)
        merged["redirect_uris"] = list(dict.fromkeys(
            merged["redirect_uris"] + row.redirect_uris))
        row.client_metadata, row.disabled = merged, False
        store.clients.set_client_origins(row.client_id, client_origins(merged))
    return client_response(row)


def seed(demo_app_url: str) -> dict[str, Any]:
    """Create (or find) the demo data; returns what to print. Idempotent."""
    for pid, (name, born) in DEMO_PATIENTS.items():
        admin_console.add_patient(pid, name, born)
    _user(PATIENT_USERNAME, Role.PATIENT.value, "Patient/p1", "Alice Example")
    _user(CLINICIAN_USERNAME, Role.CLINICIAN.value, "Practitioner/pr1", "Dr Jordan Smith")
    return {"password": DEMO_PASSWORD, "patient": PATIENT_USERNAME,
            "clinician": CLINICIAN_USERNAME, "totp": _clinician_totp(),
            "client": _demo_app(demo_app_url.rstrip("/"))}


def ehr_launch_link(client_id: str, demo_app_url: str, patient: str = "p1") -> str:
    """A fresh EHR launch of the demo app for ``patient`` (as an EHR would open it)."""
    made = launches.create_launch(patient=patient, client_id=client_id)
    query = urlencode({"iss": made["iss"], "launch": made["launch"]})
    return f"{demo_app_url.rstrip('/')}{LAUNCH_PATH}?{query}"
