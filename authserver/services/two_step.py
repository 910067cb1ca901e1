"""Two-step sign-in on the account page: turn it on, replace the authenticator, turn it off
(where the role allows: :attr:`authserver.smart.roles.Role.requires_totp`), and make a new
set of recovery codes.

Every change asks for the current password first, since each either weakens the second
factor or hands out a new one: someone at a signed-in computer the owner walked away from
must not be able to add their own authenticator (and lock the owner out), take it off, or
read out fresh recovery codes. The password goes through the sign-in's own check
(:func:`authserver.auth.session.check_password`), so it is counted against the same
per-username limit and a wrong one is audited as ``login.failed``.

Each step is its own unit of work: a wrong password's audit row stays even though the
change it was for is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from authserver import audit, store
from authserver.auth import session as auth
from authserver.i18n import lazy_gettext
from authserver.services import notices
from authserver.smart.roles import Role

if TYPE_CHECKING:
    from authserver.models import User

__all__ = ["TwoStepError", "summary", "turn_on", "replace", "remove", "regenerate_codes"]


@dataclass
class TwoStepError(Exception):
    """Why a change was refused: ``message`` for the page, ``field`` the form field it is
    about (None: the whole form), ``status`` the HTTP status."""

    message: Any  # a str, or lazy_gettext's string in the reader's language
    field: str | None = None
    status: int = 400

    def __str__(self) -> str:
        return str(self.message)


_WRONG_PASSWORD = lazy_gettext("That password is not right.")
_WRONG_CODE = lazy_gettext("That code is not right. Try the current one.")
_LOCKED = lazy_gettext("Too many wrong passwords. Please try again in a few minutes.")
_ALREADY_ON = lazy_gettext("Two-step sign-in is already on.")
_ALREADY_OFF = lazy_gettext("Two-step sign-in is already off.")
_OFF_REPLACE = lazy_gettext("Two-step sign-in is off: turn it on instead.")
_OFF_CODES = lazy_gettext("Recovery codes need two-step sign-in: turn it on first.")
_REQUIRED = lazy_gettext("Your role needs two-step sign-in, so it cannot be turned off. You "
                         "can replace your authenticator app instead.")


def required(user: User) -> bool:
    """Does the user's role require two-step sign-in (so it cannot be turned off)?"""
    role = Role.parse(user.role)
    return role is not None and role.requires_totp


def summary(user: User) -> dict[str, Any]:
    """What the account page shows of the user's two-step sign-in."""
    return {"on": user.has_totp, "required": required(user),
            "can_remove": user.has_totp and not required(user),
            "remaining": store.recovery_codes.remaining(user.id),
            "last_used_at": store.recovery_codes.last_used_at(user.id)}


def _recheck(user: User, password: str) -> None:
    """The current password, or :class:`TwoStepError` on ``current_password``."""
    try:
        again = auth.check_password(user.username, password)
    except auth.SignInLocked:
        raise TwoStepError(_LOCKED, "current_password", 429) from None
    if again is None or again.id != user.id:
        raise TwoStepError(_WRONG_PASSWORD, "current_password", 401)


def turn_on(user: User, code: str, password: str) -> list[str]:
    """Enrol the secret shown on the page (``code`` from it): the new recovery codes."""
    if user.has_totp:
        raise TwoStepError(_ALREADY_ON, None, 409)
    _recheck(user, password)
    codes = auth.confirm_enrolment(user, code)
    if codes is None:
        raise TwoStepError(_WRONG_CODE, "code", 401)
    notices.two_step_changed(user, "on")
    return codes


def replace(user: User, code: str, password: str) -> None:
    """Put the secret shown on the page in place of the account's authenticator."""
    if not user.has_totp:
        raise TwoStepError(_OFF_REPLACE, None, 409)
    _recheck(user, password)
    if not auth.replace_totp(user, code):
        raise TwoStepError(_WRONG_CODE, "code", 401)
    notices.two_step_changed(user, "replaced")


def remove(user: User, password: str) -> None:
    """Turn two-step sign-in off: the secret and every recovery code go."""
    if not user.has_totp:
        raise TwoStepError(_ALREADY_OFF, None, 409)
    if required(user):
        raise TwoStepError(_REQUIRED, None, 403)
    _recheck(user, password)
    with store.transaction():
        store.accounts.remove_totp(user.id)
        store.recovery_codes.delete_codes(user.id)
        audit.record("user.totp_removed", user_id=user.id)
    store.accounts.reload(user)
    notices.two_step_changed(user, "off")


def regenerate_codes(user: User, password: str) -> list[str]:
    """A new set of recovery codes; every old one stops working."""
    if not user.has_totp:
        raise TwoStepError(_OFF_CODES, None, 409)
    _recheck(user, password)
    with store.transaction():
        codes = auth.issue_recovery_codes(user.id, "user.recovery_codes_regenerated")
    notices.two_step_changed(user, "codes")
    return codes
