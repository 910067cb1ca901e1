"""Operator actions behind the CLI and the admin pages. Each returns a JSON-able dict and
raises :class:`AdminError` (one line, no secret) on bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from authserver import audit
from authserver.auth import passwords, totp
from authserver.auth.secrets_box import seal
from authserver.extensions import db
from authserver.models import Patient, User
from authserver.oauth import keystore, storage
from authserver.oauth.registration import RegistrationError, client_response, register_client

__all__ = ["AdminError", "init_instance", "check_database", "create_user", "enrol_totp",
           "create_client", "create_resource_server", "create_launch", "add_patient",
           "export_well_known"]

_FHIR_USER = re.compile(r"^(Patient|Practitioner|RelatedPerson|Person|PractitionerRole)/"
                        r"[A-Za-z0-9\-.]{1,64}$")
_USERNAME = re.compile(r"^[A-Za-z0-9._@+\-]{1,150}$")
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


class AdminError(Exception):
    pass


def _upgrade() -> None:
    from flask_migrate import upgrade

    upgrade()


def init_instance() -> dict[str, Any]:
    """Apply migrations and make sure signing keys exist. Idempotent."""
    try:
        _upgrade()
    except OperationalError as exc:
        raise AdminError(f"AUTHSERVER_DATABASE_URL: database unreachable "
                         f"({exc.orig.__class__.__name__})") from None
    made = keystore.ensure_keys()
    return {"database": "ready", "new_keys": made,
            "issuer": current_app.config["ISSUER"]}


def check_database() -> None:
    """Bring the schema up to date (cheap at head) or fail with one line."""
    init_instance()


def create_user(username: str, role: str, *, password: str | None = None,
                fhir_user: str | None = None, name: str | None = None,
                email: str | None = None) -> dict[str, Any]:
    if not _USERNAME.match(username or ""):
        raise AdminError(f"username {username!r}: use letters, digits and . _ @ + -")
    if role not in ("patient", "clinician", "admin", "developer"):
        raise AdminError(f"unknown role {role!r}")
    if fhir_user and not _FHIR_USER.match(fhir_user):
        raise AdminError("--fhir-user must look like Patient/ID or Practitioner/ID")
    if role == "patient" and fhir_user and not fhir_user.startswith("Patient/"):
        raise AdminError("a patient's --fhir-user must be Patient/ID")
    if password is not None:
        problem = passwords.check_password_policy(password)
        if problem:
            raise AdminError(f"password: {problem}")
    if db.session.scalars(select(User).where(User.username == username)).first():
        raise AdminError(f"user {username!r} already exists")
    user = User(username=username, role=role, fhir_user=fhir_user, name=name, email=email,
                password_hash=passwords.hash_password(password) if password else None,
                created_at=storage.now())
    db.session.add(user)
    audit.record("user.created", user_id=None, username=username, role=role)
    db.session.commit()
    return {"id": user.id, "username": user.username, "role": user.role,
            "fhirUser": user.fhir_user}


def enrol_totp(username: str) -> dict[str, Any]:
    user = storage.get_user_by_username(username)
    if user is None:
        raise AdminError(f"no user {username!r}")
    secret = totp.new_secret()
    user.totp_secret_enc = seal(secret, purpose=f"totp:{user.id}")
    user.totp_last_step = None
    audit.record("user.totp_enrolled", user_id=user.id)
    db.session.commit()
    issuer_name = current_app.config["ISSUER"].split("://", 1)[-1]
    return {"secret": secret,
            "otpauth_uri": totp.provisioning_uri(secret, user.username, issuer_name)}


def create_client(*, name: str, redirect_uris: list[str], scope: str = "",
                  auth_method: str | None = None, jwks: Any = None, jwks_uri: str | None = None,
                  grant_types: list[str] | None = None, launch_uris: list[str] | None = None,
                  can_launch: bool = False, owner_id: int | None = None) -> dict[str, Any]:
    grant_types = list(grant_types or [])
    if not auth_method:
        auth_method = "private_key_jwt" if (jwks or jwks_uri) else (
            "client_secret_basic" if "client_credentials" in grant_types else "none")
    if not grant_types:
        grant_types = ["authorization_code", "refresh_token"]
    meta: dict[str, Any] = {"client_name": name, "redirect_uris": redirect_uris,
                            "scope": scope, "token_endpoint_auth_method": auth_method,
                            "grant_types": grant_types, "launch_uris": launch_uris or []}
    if jwks is not None:
        meta["jwks"] = jwks
    if jwks_uri:
        meta["jwks_uri"] = jwks_uri
    try:
        client, secret = register_client(meta, owner_id=owner_id, can_launch=can_launch)
    except RegistrationError as exc:
        raise AdminError(f"{exc.error}: {exc.description}") from None
    audit.record("client.created", client_id=client.client_id, via="cli")
    db.session.commit()
    body = client_response(client, secret)
    if can_launch:
        body["can_launch"] = True
    return body


def create_resource_server(name: str) -> dict[str, Any]:
    try:
        client, secret = register_client(
            {"client_name": name, "token_endpoint_auth_method": "client_secret_basic",
             "grant_types": [], "response_types": []}, kind="resource_server")
    except RegistrationError as exc:
        raise AdminError(f"{exc.error}: {exc.description}") from None
    audit.record("resource_server.created", client_id=client.client_id)
    db.session.commit()
    return {"client_id": client.client_id, "client_secret": secret, "client_name": name}


def create_launch(*, patient: str, encounter: str | None = None, fhir_context: Any = None,
                  need_patient_banner: bool = False, intent: str | None = None,
                  smart_style_url: str | None = None, tenant: str | None = None,
                  username: str | None = None, aud: str | None = None,
                  client_id: str | None = None) -> dict[str, Any]:
    from authserver.smart.launch import LaunchError, validate_fhir_context

    conf = current_app.config
    if not _FHIR_ID.match(patient or ""):
        raise AdminError("--patient must be a FHIR id")
    if encounter is not None and not _FHIR_ID.match(encounter):
        raise AdminError("--encounter must be a FHIR id")
    try:
        fhir_context = validate_fhir_context(fhir_context)
    except LaunchError as exc:
        raise AdminError(f"--fhir-context: {exc}") from None
    aud = (aud or conf["FHIR_BASE_URL"]).rstrip("/")
    if aud not in conf["FHIR_BASE_URLS"]:
        raise AdminError("--aud must be one of AUTHSERVER_FHIR_BASE_URL")
    user_id = None
    if username:
        user = storage.get_user_by_username(username)
        if user is None:
            raise AdminError(f"no user {username!r}")
        user_id = user.id
    value = storage.create_launch(
        conf["LAUNCH_LIFETIME"], client_id=client_id, user_id=user_id, aud=aud,
        patient=patient, encounter=encounter, fhir_context=fhir_context, intent=intent,
        need_patient_banner=need_patient_banner,
        smart_style_url=smart_style_url or conf["ISSUER"] + "/smart-style.json", tenant=tenant)
    return {"launch": value, "iss": aud, "expires_in": conf["LAUNCH_LIFETIME"]}


def add_patient(patient_id: str, name: str, birth_date: str | None) -> dict[str, Any]:
    if not _FHIR_ID.match(patient_id or ""):
        raise AdminError("patient id must be a FHIR id ([A-Za-z0-9-.], at most 64)")
    if birth_date and not re.match(r"^\d{4}-\d{2}-\d{2}$", birth_date):
        raise AdminError("--birth-date must be YYYY-MM-DD")
    family, _, given = (name or "").partition(",")
    if not family.strip():
        raise AdminError('--name must be "Family, Given"')
    row = db.session.get(Patient, patient_id) or Patient(id=patient_id)
    row.family, row.given, row.birth_date = family.strip(), given.strip(), birth_date
    db.session.add(row)
    db.session.commit()
    return {"id": row.id, "name": row.display_name, "birthDate": row.birth_date}


def export_well_known(directory: Path) -> dict[str, Any]:
    from authserver.oauth import discovery

    directory.mkdir(parents=True, exist_ok=True)
    docs = {"smart-configuration": discovery.smart_document(),
            "openid-configuration": discovery.openid_document(),
            "jwks.json": discovery.jwks_document()}
    written = []
    for name, body in docs.items():
        path = directory / name
        try:
            path.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
        except OSError as exc:
            raise AdminError(f"cannot write {path}: {exc.strerror}") from None
        written.append(str(path))
    return {"written": written}


def database_error(exc: SQLAlchemyError) -> AdminError:
    return AdminError(f"database error ({exc.__class__.__name__})")
