"""Operator actions behind the CLI and the admin pages. Each returns a JSON-able dict and
raises :class:`AdminError` (one line, no secret) on bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from authserver import audit, clock, identifiers, store
from authserver.auth import passwords, totp
from authserver.auth.secrets_box import seal
from authserver.models import Role, User
from authserver.oauth import keystore
from authserver.oauth.registration import (
    RegistrationError,
    client_response,
    register_client,
    self_service_problem,
)

__all__ = ["AdminError", "init_instance", "check_database", "create_user", "enrol_totp",
           "create_client", "create_resource_server", "create_launch", "add_patient",
           "export_well_known", "set_client_introspect", "create_registration_token",
           "revoke_registration_token"]



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


@store.transaction()
def create_user(username: str, role: str, *, password: str | None = None,
                fhir_user: str | None = None, name: str | None = None,
                email: str | None = None) -> dict[str, Any]:
    raw_username = username
    username = identifiers.username(username)
    if username is None:
        raise AdminError(f"username {raw_username!r}: use letters, digits and . _ @ + -")
    if Role.parse(role) is None:
        raise AdminError(f"unknown role {role!r}")
    if fhir_user:
        raw_fhir_user, fhir_user = fhir_user, identifiers.fhir_user(fhir_user)
        if fhir_user is None:
            raise AdminError(f"--fhir-user {raw_fhir_user!r} must look like Patient/ID or "
                             "Practitioner/ID")
    if role == Role.PATIENT and fhir_user and not fhir_user.startswith("Patient/"):
        raise AdminError("a patient's --fhir-user must be Patient/ID")
    if password is not None:
        problem = passwords.check_password_policy(password)
        if problem:
            raise AdminError(f"password: {problem}")
    key = identifiers.username_key(username)
    if store.accounts.find_username(username) is not None:
        raise AdminError(f"user {username!r} already exists")
    user = User(username=username, username_key=key, role=role, fhir_user=fhir_user,
                name=name, email=email,
                password_hash=passwords.hash_password(password) if password else None,
                created_at=clock.now())
    store.accounts.add_user(user)
    audit.record("user.created", user_id=None, username=username, role=role)
    return {"id": user.id, "username": user.username, "role": user.role,
            "fhirUser": user.fhir_user}


@store.transaction()
def enrol_totp(username: str) -> dict[str, Any]:
    user = store.accounts.get_user_by_username(username)
    if user is None:
        raise AdminError(f"no user {username!r}")
    secret = totp.new_secret()
    user.totp_secret_enc = seal(secret, purpose=f"totp:{user.id}")
    user.totp_last_step = None
    audit.record("user.totp_enrolled", user_id=user.id)
    return {"secret": secret,
            "otpauth_uri": totp.provisioning_uri(secret, user.username,
                                                 current_app.config["TOTP_ISSUER"])}


@store.transaction()
def create_client(*, name: str, redirect_uris: list[str], scope: str = "",
                  auth_method: str | None = None, jwks: Any = None, jwks_uri: str | None = None,
                  grant_types: list[str] | None = None, launch_uris: list[str] | None = None,
                  can_launch: bool = False, can_introspect: bool = False,
                  owner_id: int | None = None, verified: bool = True) -> dict[str, Any]:
    """An app an administrator registers (``verified``, unless the developer page calls
    this for a developer). ``can_introspect``: it may introspect other clients' tokens."""
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
        client, secret = register_client(meta, owner_id=owner_id, can_launch=can_launch,
                                         can_introspect=can_introspect, verified=verified)
    except RegistrationError as exc:
        raise AdminError(f"{exc.error}: {exc.description}") from None
    audit.record("client.created", client_id=client.client_id,
                 via="cli" if verified else "portal", can_introspect=can_introspect)
    body = client_response(client, secret)
    if can_launch:
        body["can_launch"] = True
    if can_introspect:
        body["can_introspect"] = True
    return body


@store.transaction()
def create_resource_server(name: str) -> dict[str, Any]:
    try:
        client, secret = register_client(
            {"client_name": name, "token_endpoint_auth_method": "client_secret_basic",
             "grant_types": [], "response_types": []}, kind="resource_server",
            can_introspect=True, verified=True)
    except RegistrationError as exc:
        raise AdminError(f"{exc.error}: {exc.description}") from None
    audit.record("resource_server.created", client_id=client.client_id)
    return {"client_id": client.client_id, "client_secret": secret, "client_name": name}


@store.transaction()
def create_launch(*, patient: str, encounter: str | None = None, fhir_context: Any = None,
                  need_patient_banner: bool = False, intent: str | None = None,
                  smart_style_url: str | None = None, tenant: str | None = None,
                  username: str | None = None, aud: str | None = None,
                  client_id: str | None = None, created_by: str | None = None
                  ) -> dict[str, Any]:
    """An EHR launch context (single use, ``LAUNCH_LIFETIME`` seconds), for the CLI and for
    ``POST /launch``. Errors name the parameter as the JSON body spells it."""
    from authserver.oauth.launch import smart_style_url as default_style_url
    from authserver.smart.launch import LaunchError, validate_fhir_context

    conf = current_app.config
    patient = identifiers.fhir_id(patient)
    if patient is None:
        raise AdminError("'patient' must be a FHIR id ([A-Za-z0-9-.], at most 64)")
    if encounter is not None:
        encounter = identifiers.fhir_id(encounter)
        if encounter is None:
            raise AdminError("'encounter' must be a FHIR id ([A-Za-z0-9-.], at most 64)")
    try:
        fhir_context = validate_fhir_context(fhir_context)
    except LaunchError as exc:
        raise AdminError(f"'fhirContext': {exc}") from None
    for name, value in (("intent", intent), ("tenant", tenant)):
        if value is not None and (not isinstance(value, str) or not value
                                  or len(value) > _MAX_LAUNCH_TEXT):
            raise AdminError(f"'{name}' must be a string of 1 to {_MAX_LAUNCH_TEXT} characters")
    if not isinstance(need_patient_banner, bool):
        raise AdminError("'need_patient_banner' must be true or false")
    if smart_style_url is not None and not _is_absolute_url(smart_style_url):
        raise AdminError("'smart_style_url' must be an absolute http(s) URL")
    if aud is not None and not isinstance(aud, str):
        raise AdminError("'aud' must be one of AUTHSERVER_FHIR_BASE_URL")
    aud = (aud or conf["FHIR_BASE_URL"]).strip().rstrip("/")
    if aud not in conf["FHIR_BASE_URLS"]:
        raise AdminError("'aud' must be one of AUTHSERVER_FHIR_BASE_URL")
    if client_id is not None:
        target = store.clients.find_client(client_id) if isinstance(client_id, str) else None
        if target is None or target.kind != "app":
            raise AdminError("'client_id' is not an enabled app of this server")
    user_id, dead = None, False
    if username is not None:
        user = store.accounts.get_user_by_username(username) if isinstance(username, str) else None
        if user is None and created_by is None:
            raise AdminError("'user' is not a known user")  # the operator's CLI: say so
        if user is None:
            # POST /launch answers the same whether or not the user exists (no account
            # enumeration by an EHR): the launch is made, already spent, so nobody can use it.
            dead = True
        else:
            user_id = user.id
    value = store.interaction.create_launch(
        conf["LAUNCH_LIFETIME"], client_id=client_id, user_id=user_id, aud=aud,
        consumed_at=clock.now() if dead else None,
        patient=patient, encounter=encounter, fhir_context=fhir_context, intent=intent,
        need_patient_banner=need_patient_banner,
        smart_style_url=smart_style_url or default_style_url(), tenant=tenant)
    audit.record("launch.created", client_id=created_by, user_id=user_id,
                 via="api" if created_by else "cli")
    return {"launch": value, "iss": aud, "expires_in": conf["LAUNCH_LIFETIME"]}


_MAX_LAUNCH_TEXT = 255


def _is_absolute_url(value: Any) -> bool:
    from urllib.parse import urlsplit

    if not isinstance(value, str) or len(value) > 512 or any(c.isspace() for c in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


@store.transaction()
def add_patient(patient_id: str, name: str, birth_date: str | None) -> dict[str, Any]:
    patient_id = identifiers.fhir_id(patient_id)
    if patient_id is None:
        raise AdminError("patient id must be a FHIR id ([A-Za-z0-9-.], at most 64)")
    if birth_date and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", birth_date):
        raise AdminError("--birth-date must be YYYY-MM-DD")
    family, _, given = (name or "").partition(",")
    if not family.strip():
        raise AdminError('--name must be "Family, Given"')
    row = store.registry.put_patient(patient_id, family.strip(), given.strip(), birth_date)
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


# ---- pages: the developer portal and the admin console ------------------------------

def list_clients(owner_id: int | None = None) -> list[Any]:
    return store.clients.list_apps(owner_id)


@store.transaction()
def set_client_enabled(client_id: str, enabled: bool, *, by: int) -> bool:
    """Enable or disable an app; disabling also ends every grant it holds."""
    row = store.clients.any_client(client_id)
    if row is None:
        return False
    row.disabled = not enabled
    if enabled:
        row.verified = True  # an administrator approved it
    audit.record("client.enabled" if enabled else "client.disabled", user_id=by,
                 client_id=client_id)
    if not enabled:
        store.authorization.revoke_client_grants(client_id)
    return True


def register_portal_app(owner: User, form: dict[str, Any]) -> dict[str, Any]:
    """An app registered on the developer page. ``kind`` is one of:

    - ``public``: a browser or native app (PKCE, no secret);
    - ``confidential``: a server-side app with a secret (client_secret_basic);
    - ``asymmetric``: a server-side app with a key pair (private_key_jwt);
    - ``backend``: a backend service (client_credentials + private_key_jwt, ``system/``
      scopes). SMART wants backend services to authenticate with assertions, so that is
      the only method offered; such an app starts disabled until an administrator approves
      it, since it reaches data without any user's consent.
    """
    kind = form.get("kind", "public")
    problem = self_service_problem(" ".join(str(form.get("scope", "")).split()))
    if problem:
        raise AdminError(problem)
    jwks: Any = None
    if form.get("jwks"):
        try:
            jwks = json.loads(form["jwks"])
        except ValueError:
            raise AdminError("The JWK Set is not valid JSON") from None
    lines = [u.strip() for u in str(form.get("redirect_uris", "")).splitlines() if u.strip()]
    scope = " ".join(str(form.get("scope", "")).split())
    launch = [u.strip() for u in str(form.get("launch_uri", "")).splitlines() if u.strip()]
    if kind == "backend":
        if any(not s.startswith("system/") for s in scope.split()):
            raise AdminError("A backend service asks for system/ scopes only")
        body = create_client(name=form.get("name", ""), redirect_uris=[], scope=scope,
                             auth_method="private_key_jwt", jwks=jwks,
                             jwks_uri=form.get("jwks_uri") or None,
                             grant_types=["client_credentials"], owner_id=owner.id,
                             verified=False)
        set_client_enabled(body["client_id"], False, by=owner.id)
        body["pending_approval"] = True
        return body
    if any(s.startswith("system/") for s in scope.split()):
        raise AdminError("system/ scopes are for backend services")
    method = {"public": "none", "confidential": "client_secret_basic",
              "asymmetric": "private_key_jwt"}.get(kind)
    if method is None:
        raise AdminError("Choose the kind of app")
    return create_client(name=form.get("name", ""), redirect_uris=lines, scope=scope,
                         auth_method=method, jwks=jwks, jwks_uri=form.get("jwks_uri") or None,
                         grant_types=["authorization_code", "refresh_token"],
                         launch_uris=launch, owner_id=owner.id, verified=False)


@store.transaction()
def set_client_introspect(client_id: str, allowed: bool, *, by: int | None = None
                          ) -> dict[str, Any]:
    """Give or take an app's permission to introspect other clients' tokens (an
    administrator's act: it also marks the app verified). Takes effect at the next
    /introspect call of the app, its tokens included."""
    row = store.clients.any_client(client_id)
    if row is None or row.kind != "app":
        raise AdminError(f"no app {client_id!r}")
    row.can_introspect = allowed
    if allowed:
        row.verified = True
    audit.record("client.introspect_allowed" if allowed else "client.introspect_denied",
                 user_id=by, client_id=client_id)
    return {"client_id": row.client_id, "can_introspect": row.can_introspect}


@store.transaction()
def set_client_pre_approved(client_id: str, approved: bool, *, by: int | None = None
                            ) -> dict[str, Any]:
    """Let clinicians' EHR launches of an app skip the consent page (or not). Patients
    always see the page. An administrator's act: it also marks the app verified."""
    row = store.clients.any_client(client_id)
    if row is None or row.kind != "app":
        raise AdminError(f"no app {client_id!r}")
    row.pre_approved = approved
    if approved:
        row.verified = True
    audit.record("client.pre_approved" if approved else "client.pre_approval_withdrawn",
                 user_id=by, client_id=client_id)
    return {"client_id": row.client_id, "pre_approved": row.pre_approved}


#: Initial access tokens: default and longest lifetime (seconds), most uses.
REGISTRATION_TOKEN_LIFETIME = 24 * 3600
REGISTRATION_TOKEN_MAX_LIFETIME = 90 * 24 * 3600
REGISTRATION_TOKEN_MAX_USES = 10_000


@store.transaction()
def create_registration_token(*, uses: int = 1, lifetime: int = REGISTRATION_TOKEN_LIFETIME,
                              note: str | None = None) -> dict[str, Any]:
    """An RFC 7591 initial access token for ``POST /register``: ``uses`` registrations
    within ``lifetime`` seconds. The token is shown once (stored as its SHA-256)."""
    if not 1 <= uses <= REGISTRATION_TOKEN_MAX_USES:
        raise AdminError(f"--uses must be 1 to {REGISTRATION_TOKEN_MAX_USES}")
    if not 60 <= lifetime <= REGISTRATION_TOKEN_MAX_LIFETIME:
        raise AdminError(f"--lifetime must be 60 to {REGISTRATION_TOKEN_MAX_LIFETIME} seconds")
    if note is not None and len(note) > 255:
        raise AdminError("--note must be at most 255 characters")
    token, row = store.clients.create_registration_token(lifetime=lifetime, max_uses=uses,
                                                         note=note)
    audit.record("registration_token.created", token_id=row.id, uses=uses,
                 expires_at=row.expires_at)
    return {"registration_token": token, "expires_at": row.expires_at, "uses": uses,
            "id": row.id}


@store.transaction()
def revoke_registration_token(token_id: int) -> dict[str, Any]:
    if not store.clients.revoke_registration_token(token_id):
        raise AdminError(f"no registration token {token_id}")
    audit.record("registration_token.revoked", token_id=token_id)
    return {"id": token_id, "revoked": True}


def list_users() -> list[User]:
    return store.accounts.all_users()


@store.transaction()
def set_user_enabled(user_id: int, enabled: bool, *, by: int) -> bool:
    user = store.accounts.any_user(user_id)
    if user is None or user.id == by:
        return False  # an admin cannot lock themselves out
    user.disabled = not enabled
    audit.record("user.enabled" if enabled else "user.disabled", user_id=by,
                 target=user.username)
    if not enabled:
        store.accounts.end_sessions_of(user.id)
    return True


def recent_audit(limit: int = 200) -> list[Any]:
    return store.audit.recent(limit)
