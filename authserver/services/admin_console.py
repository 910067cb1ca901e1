"""The operator's actions behind the CLI, the admin console and the developer page: the
instance (schema and signing keys), apps and resource servers, RFC 7591 initial access
tokens, patients, the static ``.well-known`` documents, the console's user switches and
audit log. Each action returns a JSON-able dict (or a bool) and raises :class:`AdminError`
(one line, no secret) on bad input; each that writes is one unit of work.

Users and invitations live in :mod:`authserver.services.accounts`, EHR launches in
:mod:`authserver.services.launches`.

- https://www.rfc-editor.org/rfc/rfc7591#section-3 (initial access tokens)
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import current_app
from sqlalchemy.exc import OperationalError

from authserver import audit, identifiers, store
from authserver.oauth import keystore
from authserver.oauth.rfc7591 import RegistrationError
from authserver.services.registration import (
    client_response,
    register_client,
    self_service_problem,
)
from authserver.smart.client_types import AuthMethod, GrantType
from authserver.smart.words import N_, Words

if TYPE_CHECKING:
    from authserver.models import User

__all__ = ["AdminError", "init_instance", "check_database", "create_client",
           "create_resource_server", "add_patient", "export_well_known", "list_clients",
           "set_client_enabled", "register_portal_app", "set_client_introspect",
           "set_client_pre_approved", "create_registration_token",
           "revoke_registration_token", "list_users", "set_user_enabled", "recent_audit",
           "REGISTRATION_TOKEN_LIFETIME", "REGISTRATION_TOKEN_MAX_LIFETIME",
           "REGISTRATION_TOKEN_MAX_USES"]


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


# ---- apps -----------------------------------------------------------------------------

#: The grants of an app a person uses (sign-in, then refresh).
_INTERACTIVE_GRANTS = (GrantType.AUTHORIZATION_CODE.value, GrantType.REFRESH_TOKEN.value)


@store.transaction()
def create_client(*, name: str, redirect_uris: list[str], scope: str = "",
                  auth_method: str | None = None, jwks: Any = None, jwks_uri: str | None = None,
                  grant_types: list[str] | None = None, launch_uris: list[str] | None = None,
                  can_launch: bool = False, can_introspect: bool = False,
                  owner_id: int | None = None, verified: bool = True,
                  via: str = "cli") -> dict[str, Any]:
    """An app an administrator registers (``verified``, unless the developer page calls
    this for a developer). ``can_introspect``: it may introspect other clients' tokens.
    ``via`` names the caller in the audit row (``cli``, or ``portal`` for the developer
    page)."""
    grant_types = list(grant_types or [])
    if not auth_method:
        auth_method = (AuthMethod.PRIVATE_KEY_JWT if (jwks or jwks_uri) else
                       AuthMethod.CLIENT_SECRET_BASIC
                       if GrantType.CLIENT_CREDENTIALS in grant_types else AuthMethod.NONE
                       ).value
    if not grant_types:
        grant_types = list(_INTERACTIVE_GRANTS)
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
    audit.record("client.created", client_id=client.client_id, via=via,
                 can_introspect=can_introspect)
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
            {"client_name": name,
             "token_endpoint_auth_method": AuthMethod.CLIENT_SECRET_BASIC.value,
             "grant_types": [], "response_types": []}, kind="resource_server",
            can_introspect=True, verified=True)
    except RegistrationError as exc:
        raise AdminError(f"{exc.error}: {exc.description}") from None
    audit.record("resource_server.created", client_id=client.client_id)
    return {"client_id": client.client_id, "client_secret": secret, "client_name": name}


def list_clients(owner_id: int | None = None) -> list[Any]:
    return store.clients.list_apps(owner_id)


@store.transaction()
def set_client_enabled(client_id: str, enabled: bool, *, by: int | None) -> bool:
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


#: The developer page's kinds of interactive app and the authentication method of each.
_PORTAL_METHODS = {"public": AuthMethod.NONE.value,
                   "confidential": AuthMethod.CLIENT_SECRET_BASIC.value,
                   "asymmetric": AuthMethod.PRIVATE_KEY_JWT.value}


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
    scope = " ".join(str(form.get("scope", "")).split())
    problem = self_service_problem(scope)
    if problem:
        raise AdminError(problem)
    keys = {"jwks": _portal_jwks(form), "jwks_uri": form.get("jwks_uri") or None}
    if kind == "backend":
        return _register_backend(owner, form.get("name", ""), scope, keys)
    if any(s.startswith("system/") for s in scope.split()):
        raise AdminError(Words(N_("system/ scopes are for backend services")))
    method = _PORTAL_METHODS.get(kind)
    if method is None:
        raise AdminError(Words(N_("Choose the kind of app")))
    return create_client(name=form.get("name", ""), redirect_uris=_lines(form, "redirect_uris"),
                         scope=scope, auth_method=method, **keys,
                         grant_types=list(_INTERACTIVE_GRANTS),
                         launch_uris=_lines(form, "launch_uri"), owner_id=owner.id,
                         verified=False, via="portal")


def _lines(form: dict[str, Any], field: str) -> list[str]:
    """The non-blank lines of a textarea."""
    return [u.strip() for u in str(form.get(field, "")).splitlines() if u.strip()]


def _portal_jwks(form: dict[str, Any]) -> Any:
    """The JWK Set pasted on the developer page (None when none was)."""
    if not form.get("jwks"):
        return None
    try:
        return json.loads(form["jwks"])
    except ValueError:
        raise AdminError(Words(N_("The JWK Set is not valid JSON"))) from None


def _register_backend(owner: User, name: str, scope: str, keys: dict[str, Any]
                      ) -> dict[str, Any]:
    """A developer's backend service: ``system/`` scopes only, disabled until approved."""
    if any(not s.startswith("system/") for s in scope.split()):
        raise AdminError(Words(N_("A backend service asks for system/ scopes only")))
    body = create_client(name=name, redirect_uris=[], scope=scope,
                         auth_method=AuthMethod.PRIVATE_KEY_JWT.value, **keys,
                         grant_types=[GrantType.CLIENT_CREDENTIALS.value], owner_id=owner.id,
                         verified=False, via="portal")
    set_client_enabled(body["client_id"], False, by=owner.id)
    body["pending_approval"] = True
    return body


def _set_permission(client_id: str, flag: str, value: bool, by: int | None,
                    events: tuple[str, str]) -> dict[str, Any]:
    """Set an administrator-only flag of an app (granting one also marks the app verified)
    and audit it as ``events[0]`` (granted) or ``events[1]`` (taken away)."""
    row = store.clients.any_client(client_id)
    if row is None or row.kind != "app":
        raise AdminError(Words(N_("no app {client_id}"), client_id=repr(client_id)))
    setattr(row, flag, value)
    if value:
        row.verified = True
    audit.record(events[0] if value else events[1], user_id=by, client_id=client_id)
    return {"client_id": row.client_id, flag: getattr(row, flag)}


@store.transaction()
def set_client_introspect(client_id: str, allowed: bool, *, by: int | None = None
                          ) -> dict[str, Any]:
    """Give or take an app's permission to introspect other clients' tokens (an
    administrator's act: it also marks the app verified). Takes effect at the next
    /introspect call of the app, its tokens included."""
    return _set_permission(client_id, "can_introspect", allowed, by,
                           ("client.introspect_allowed", "client.introspect_denied"))


@store.transaction()
def set_client_pre_approved(client_id: str, approved: bool, *, by: int | None = None
                            ) -> dict[str, Any]:
    """Let clinicians' EHR launches of an app skip the consent page (or not). Patients
    always see the page. An administrator's act: it also marks the app verified."""
    return _set_permission(client_id, "pre_approved", approved, by,
                           ("client.pre_approved", "client.pre_approval_withdrawn"))


# ---- initial access tokens (RFC 7591 §3) ----------------------------------------------

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


# ---- patients and the static documents -----------------------------------------------

@store.transaction()
def add_patient(patient_id: str, name: str, birth_date: str | None) -> dict[str, Any]:
    patient_id = identifiers.fhir_id(patient_id)
    if patient_id is None:
        raise AdminError("patient id must be a FHIR id ([A-Za-z0-9-.], at most 64)")
    if birth_date and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", birth_date):
        raise AdminError("--birth-date must be YYYY-MM-DD")
    if birth_date and not _real_date(birth_date):
        raise AdminError(f"--birth-date {birth_date!r} is not a real date (YYYY-MM-DD)")
    family, _, given = (name or "").partition(",")
    if not family.strip():
        raise AdminError('--name must be "Family, Given"')
    row = store.registry.put_patient(patient_id, family.strip(), given.strip(), birth_date)
    return {"id": row.id, "name": row.display_name, "birthDate": row.birth_date}


def _real_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


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


# ---- the console's users and audit log ------------------------------------------------

def list_users() -> list[User]:
    return store.accounts.all_users()


@store.transaction()
def set_user_enabled(user_id: int, enabled: bool, *, by: int | None) -> bool:
    """Enable or disable a user (``by``: the administrator, who cannot disable themselves;
    None: the operator at the command line); disabling ends their sessions and revokes
    every grant they gave, so re-enabling them later brings no old token back."""
    user = store.accounts.any_user(user_id)
    if user is None or user.id == by:
        return False  # an admin cannot lock themselves out
    user.disabled = not enabled
    audit.record("user.enabled" if enabled else "user.disabled", user_id=by,
                 target=user.username)
    if not enabled:
        store.accounts.end_sessions_of(user.id)
        store.authorization.revoke_user_grants(user.id)
    return True


def recent_audit(limit: int = 200) -> list[Any]:
    return store.audit.recent(limit)
