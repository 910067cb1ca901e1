"""The operator's user accounts at the command line (``authserver user ...``): list and
show, disable and enable, a new role, a password reset, a fresh start for two-step sign-in,
and the registry checks of a patient id the command line is given.

Each action returns a JSON-able dict and raises
:class:`~authserver.services.admin_console.AdminError` (one line, no secret), worded for the
command line; each that writes is one unit of work with its audit row. The acting person is
the operator (``user_id`` None in the audit row, ``via="cli"``). The admin console's own
switches live in :mod:`authserver.services.admin_console`; creating users and invitations
in :mod:`authserver.services.accounts`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from authserver import audit, identifiers, store
from authserver.services import accounts, admin_console, mail, passwords
from authserver.services.admin_console import AdminError
from authserver.smart.roles import Role

if TYPE_CHECKING:
    from authserver.models import User

__all__ = ["MAX_PAGE", "check_page", "list_users", "show_user", "set_enabled", "set_role",
           "reset_password", "reset_totp", "check_patient_known", "check_fhir_user",
           "has_authenticator", "check_new_user"]

#: The most users (or clients) one page lists.
MAX_PAGE = 500


def _user(username: str) -> User:
    """The user (enabled or not) named ``username``, or :class:`AdminError`."""
    user = store.accounts.find_username(username) if isinstance(username, str) else None
    if user is None:
        raise AdminError(f"no user {username!r}")
    return user


def _row(user: User) -> dict[str, Any]:
    return {"id": user.id, "username": user.username, "role": user.role,
            "fhir_user": user.fhir_user, "name": user.name, "email": user.email,
            "disabled": bool(user.disabled), "two_step": "on" if user.has_totp else "off",
            "created_at": user.created_at}


def check_page(limit: int, after: int | None) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise AdminError(f"--limit must be 1 to {MAX_PAGE}")
    if after is not None and after < 0:
        raise AdminError("--after must be an id from a previous page's \"next\"")


def list_users(*, role: str | None = None, disabled: bool | None = None, limit: int = 50,
               after: int | None = None) -> dict[str, Any]:
    """A page of users by id: ``{"users": [...], "next": id | None}``; ``next`` is what
    ``after`` takes for the page that follows (None: this is the last one)."""
    check_page(limit, after)
    rows = store.accounts.users_page(role=role, disabled=disabled, after=after,
                                     limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return {"users": [_row(u) for u in rows], "next": rows[-1].id if more else None}


def show_user(username: str) -> dict[str, Any]:
    """What an operator asks about one account (never a secret)."""
    user = _user(username)
    return {**_row(user), "password_set": user.password_hash is not None,
            "recovery_codes_left": store.recovery_codes.remaining(user.id),
            "live_sessions": store.accounts.count_live_sessions(user.id),
            "connected_apps": len(store.authorization.user_app_access(user.id))}


@store.transaction()
def set_enabled(username: str, enabled: bool) -> dict[str, Any]:
    """Enable or disable the account: the admin console's switch
    (:func:`~authserver.services.admin_console.set_user_enabled`), so disabling ends every
    sign-in session and revokes every grant, at once."""
    user = _user(username)
    sessions = store.accounts.count_live_sessions(user.id)
    admin_console.set_user_enabled(user.id, enabled, by=None)
    out: dict[str, Any] = {"username": user.username, "disabled": not enabled}
    if not enabled:
        out["sessions_ended"] = sessions
    return out


@store.transaction()
def set_role(username: str, role: str, fhir_user: str | None = None) -> dict[str, Any]:
    """A new role (and ``fhirUser``, else the account's own), by the rules a new account
    follows (:func:`~authserver.services.accounts.check_profile`). A change ends the
    account's sessions and revokes its grants: their tokens carry the old identity."""
    user = _user(username)
    try:
        normal = accounts.check_profile(role, fhir_user if fhir_user else user.fhir_user)
    except accounts.ProfileError as exc:
        raise AdminError(f"{exc} (give --fhir-user)" if fhir_user is None else str(exc)
                         ) from None
    if fhir_user:
        check_fhir_user(normal)
    changed = (user.role, user.fhir_user) != (role, normal)
    before = user.role
    user.role, user.fhir_user = role, normal
    if changed:
        store.accounts.end_sessions_of(user.id)
        store.authorization.revoke_user_grants(user.id)
        audit.record("user.role_changed", target=user.username, old_role=before, role=role,
                     fhir_user=normal, via="cli")
    return {"username": user.username, "role": user.role, "fhir_user": user.fhir_user,
            "changed": changed}


def reset_password(username: str, password: str | None) -> dict[str, Any]:
    """``password`` given: set it (every session ends). Else mail a forgotten-password
    link when the account has an e-mail address and mail is configured; else refuse."""
    user = _user(username)
    if user.disabled:
        raise AdminError(f"user {user.username!r} is disabled: enable them first")
    if password is not None:
        try:
            passwords.set_by_operator(user, password)
        except passwords.PasswordError as exc:
            raise AdminError(f"password: {exc}") from None
        return {"username": user.username, "reset": "password_set"}
    if not user.email or not mail.configured():
        why = ("has no e-mail address" if not user.email else
               "cannot be mailed: e-mail is not configured (AUTHSERVER_SMTP_HOST)")
        raise AdminError(f"user {user.username!r} {why}; give a new password with "
                         "--password-stdin")
    try:
        expires = passwords.send_link_now(user)
    except mail.NotSent as exc:
        raise AdminError(f"the reset e-mail could not be sent ({exc}); check "
                         "AUTHSERVER_SMTP_HOST and try again") from None
    if expires is None:
        raise AdminError(f"a reset link was sent to {user.username!r} less than "
                         f"{passwords.RESEND_INTERVAL} seconds ago and still works")
    return {"username": user.username, "reset": "link_sent", "email": user.email,
            "expires_at": expires}


@store.transaction()
def reset_totp(username: str) -> dict[str, Any]:
    """Forget the account's authenticator and recovery codes and end its sessions: a role
    that requires two-step sign-in enrols again at the next sign-in."""
    user = _user(username)
    had = user.has_totp
    codes = store.recovery_codes.remaining(user.id)
    store.accounts.remove_totp(user.id)
    store.recovery_codes.delete_codes(user.id)
    ended = store.accounts.end_sessions_of(user.id)
    audit.record("user.totp_reset", target=user.username, had_totp=had, via="cli")
    store.accounts.reload(user)
    role = Role.parse(user.role)
    return {"username": user.username, "two_step": "off", "had_authenticator": had,
            "recovery_codes_removed": codes, "sessions_ended": ended,
            "enrols_at_next_sign_in": role is not None and role.requires_totp}


def check_patient_known(patient_id: str, what: str = "--patient") -> None:
    """:class:`AdminError` unless ``patient_id`` is in the patient registry."""
    if store.registry.get_patient(patient_id) is None:
        raise AdminError(f"{what}: no patient {patient_id!r} in the registry "
                         "(add it with: authserver patient add)")


def check_fhir_user(fhir_user: str | None) -> None:
    """A ``Patient/ID`` fhirUser must name a patient of the registry whenever the registry
    has any patient (an empty registry: the patients live elsewhere, any id is taken)."""
    if not fhir_user or not fhir_user.startswith("Patient/"):
        return
    if store.registry.search_patients(limit=1):
        check_patient_known(fhir_user.removeprefix("Patient/"), "--fhir-user")


def has_authenticator(username: str) -> bool:
    """Whether the account named ``username`` has an authenticator enrolled."""
    return _user(username).has_totp


def check_new_user(*, password: str | None, email: str | None, fhir_user: str | None
                   ) -> str | None:
    """What ``user create`` checks before :func:`~authserver.services.accounts.create_user`:
    a password (an account without one could never sign in), an e-mail address that looks
    like one (returned stripped), a ``Patient/ID`` of the registry (:func:`check_fhir_user`)."""
    if password is None:
        raise AdminError("give --password-stdin (or --password): without a password the "
                         "user could never sign in; to let them choose one, use "
                         "'authserver invite --email ...' instead")
    if email is not None:
        email = accounts.email_address(email)
        if email is None:
            raise AdminError("--email: enter an e-mail address such as name@example.org")
    check_fhir_user(identifiers.fhir_user(fhir_user) if fhir_user else None)
    return email
