"""Passwords a person sets themselves: the change on the account page, and the
forgotten-password link sent by e-mail. The rules are
:func:`authserver.auth.passwords.check_password_policy`, as wherever a password is set.

Changing needs the current password, counted against the same per-account limit as
sign-in (LOGIN_ACCOUNT_RATE_LIMIT, :func:`authserver.ratelimit.password_attempt`). It ends
the user's other sessions and keeps the one that made the change.

The forgotten-password link (OWASP Forgot Password Cheat Sheet) carries a 256-bit random
token (RFC 6749 §10.10 asks for at least 128 bits). Only its SHA-256 is stored, it works
once (:func:`authserver.store.password_resets.consume`, in the unit of work that sets the
password), lives PASSWORD_RESET_LIFETIME seconds, and a new link withdraws the older unused
ones. Asking for one answers the same whether or not the account exists or has an e-mail
address, and in about the same time: the same database work either way, and the mail leaves
from a thread of its own (:mod:`authserver.services.mail`). A reset ends every session of
the user and never signs anyone in; two-step sign-in is untouched, so the next sign-in asks
for the TOTP code as before. The token is never logged nor audited.

Failure counters after a reset: the per-account wrong-password count starts over (the
person proved they hold the mailbox and chose a new password; a guesser's count of the old
one means nothing, and a locked-out owner can sign in at once). A TOTP lockout stays: the
mailbox is not the second factor.

- https://cheatsheetseries.owasp.org/cheatsheets/Forgot_Password_Cheat_Sheet.html
- https://www.rfc-editor.org/rfc/rfc6749#section-10.10
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from flask import current_app

from authserver import audit, clock, digests, ratelimit, store
from authserver.auth import passwords
from authserver.i18n import format_when, gettext, translate
from authserver.services import mail, notices

if TYPE_CHECKING:
    from authserver.models import PasswordReset, User

__all__ = ["PasswordError", "ResetLinkInvalid", "change", "request_reset", "reset_user",
           "reset", "reset_available", "send_link_now", "set_by_operator",
           "redact_reset_links_in_logs", "RESET_TOKEN_BYTES", "RESEND_INTERVAL"]

#: Bytes of randomness in a reset token (256 bits).
RESET_TOKEN_BYTES = 32
#: Seconds after a link was sent during which asking again sends nothing (no mail bombing);
#: the link already sent still works.
RESEND_INTERVAL = 60

#: What ``secrets.token_urlsafe`` makes; anything else is refused before a lookup.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,128}")


class PasswordError(Exception):
    """A field's error, for the form: ``field`` is the input's name, ``str(exc)`` the one
    line to show in the reader's language (never a secret), ``status`` the HTTP status."""

    def __init__(self, field: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.field, self.status = field, status


class ResetLinkInvalid(Exception):
    """The link is unknown, has expired, was withdrawn or was used already."""

    def __init__(self) -> None:
        super().__init__("This link has expired or was already used.")


def _check_new(user: User, new: str, confirm: str, fields: tuple[str, str]) -> None:
    problem = passwords.check_password_policy(new, user.username)
    if problem:
        raise PasswordError(fields[0], translate(problem))
    if new != confirm:
        raise PasswordError(fields[1], gettext("The two passwords are not the same."))


# ---- change (signed in) -----------------------------------------------------------------

@store.transaction()
def _current_password_ok(user: User, password: str) -> bool | None:
    """True when ``password`` is the user's; False when wrong (audited); None when the
    account's wrong-password limit is reached (as at sign-in, which it counts toward)."""
    attempt = ratelimit.password_attempt(user.username)
    if attempt.refused:
        return None
    ok, _ = passwords.verify_password(user.password_hash, password)
    if not ok:
        audit.record("password.change_failed", user_id=user.id)
        if attempt.last:
            audit.record("login.password_locked", user_id=user.id,
                         until=int(attempt.until or clock.now()))
        return False
    ratelimit.password_accepted(user.username)
    return True


@store.transaction()
def _save(user: User, password_hash: str, *, keep_session: str | None, event: str,
          **detail: object) -> None:
    user.password_hash = password_hash
    store.accounts.end_sessions_of(user.id, keep=keep_session)
    audit.record(event, user_id=user.id, **detail)


def change(user: User, session_id: str, current: str, new: str, confirm: str) -> None:
    """Set ``new`` as the password of the signed-in ``user`` once ``current`` is right;
    the user's sessions other than ``session_id`` end. Raises :class:`PasswordError`."""
    ok = _current_password_ok(user, current)
    if ok is None:
        raise PasswordError("current_password", gettext(
            "Too many wrong passwords for this account. Please try again in a few minutes."),
            429)
    if not ok:
        raise PasswordError("current_password", gettext("That is not your current password."))
    _check_new(user, new, confirm, ("new_password", "new_password_confirm"))
    _save(user, passwords.hash_password(new), keep_session=session_id,
          event="password.changed")
    _notify(user, gettext("The password of your %(service)s account \"%(username)s\" "
                          "(%(issuer)s) was changed on %(when)s, on your account page. Your "
                          "other sign-ins were ended."))


# ---- forgotten password -----------------------------------------------------------------

def reset_available() -> bool:
    """Links can be sent only when mail is configured (AUTHSERVER_SMTP_HOST)."""
    return mail.configured()


def _issue(user: User, token_hash: str, t: int) -> bool:
    """A new link for ``user`` (older unused ones withdrawn), unless one was sent less than
    RESEND_INTERVAL ago."""
    last = store.password_resets.last_issued_at(user.id, t)
    if last is not None and t - last < RESEND_INTERVAL:
        return False
    store.password_resets.withdraw_unused(user.id)
    store.password_resets.add(user_id=user.id, token_hash=token_hash, created_at=t,
                              expires_at=t + current_app.config["PASSWORD_RESET_LIFETIME"])
    return True


def request_reset(username: str) -> None:
    """E-mail a reset link to the enabled account ``username`` if it has an e-mail address;
    otherwise do the same work and send nothing. Answers nothing either way."""
    t = clock.now()
    token = digests.new_secret(RESET_TOKEN_BYTES)
    user = store.accounts.get_user_by_username(username if isinstance(username, str) else "")
    target = user if user is not None and user.email and reset_available() else None
    with store.transaction():
        sent = target is not None and _issue(target, digests.sha256_hex(token), t)
        audit.record("password.reset_requested", user_id=user.id if user else None, sent=sent)
    if sent and target is not None:
        mail.send_later(_link_message(target, token, t), "password reset")


def _live(token: str) -> tuple[PasswordReset, User] | None:
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        return None
    row = store.password_resets.live(digests.sha256_hex(token), clock.now())
    user = store.accounts.get_user(row.user_id) if row is not None else None
    return (row, user) if row is not None and user is not None else None


def reset_user(token: str) -> User | None:
    """The enabled user whose live link this is, or None (unknown, expired or used)."""
    found = _live(token)
    return found[1] if found else None


def reset(token: str, password: str, confirm: str) -> None:
    """Spend the link and set ``password``; every session of the user ends. Raises
    :class:`ResetLinkInvalid` (the link is not live, or lost a race) or
    :class:`PasswordError` (a rule: the link stays usable)."""
    found = _live(token)
    if found is None:
        raise ResetLinkInvalid()
    row, user = found
    _check_new(user, password, confirm, ("password", "password_confirm"))
    password_hash = passwords.hash_password(password)  # before the write lock is taken
    with store.transaction():
        if store.password_resets.consume(row.id, clock.now()) is not store.Outcome.WON:
            raise ResetLinkInvalid()
        _save(user, password_hash, keep_session=None, event="password.reset", reset=row.id)
    ratelimit.password_accepted(user.username)
    _notify(user, gettext("The password of your %(service)s account \"%(username)s\" "
                          "(%(issuer)s) was changed on %(when)s, with a link sent to this "
                          "e-mail address. Every sign-in was ended."))


# ---- set by the operator (``authserver user reset-password``) ---------------------------

def send_link_now(user: User) -> int | None:
    """Mail ``user`` (enabled, with an e-mail address) a forgotten-password link at once,
    for the operator who must hear whether it went out: the link's expiry, or None when one
    was sent less than RESEND_INTERVAL ago (that one still works). Raises
    :class:`authserver.services.mail.NotSent` (the link is then withdrawn)."""
    t = clock.now()
    token = digests.new_secret(RESET_TOKEN_BYTES)
    with store.transaction():
        sent = _issue(user, digests.sha256_hex(token), t)
        audit.record("password.reset_requested", user_id=user.id, sent=sent, via="cli")
    if not sent:
        return None
    try:
        mail.send_now(_link_message(user, token, t))
    except mail.NotSent:
        with store.transaction():
            store.password_resets.withdraw_unused(user.id)
        raise
    return t + current_app.config["PASSWORD_RESET_LIFETIME"]


def set_by_operator(user: User, password: str) -> None:
    """Set ``password`` for ``user`` (the policy's rules: :class:`PasswordError` on
    ``password``); every session of the user ends and the unused reset links are withdrawn,
    as after a reset."""
    problem = passwords.check_password_policy(password, user.username)
    if problem:
        raise PasswordError("password", problem)
    password_hash = passwords.hash_password(password)
    with store.transaction():
        store.password_resets.withdraw_unused(user.id)
        _save(user, password_hash, keep_session=None, event="password.set_by_operator")
    ratelimit.password_accepted(user.username)
    _notify(user, gettext("The password of your %(service)s account \"%(username)s\" "
                          "(%(issuer)s) was changed on %(when)s by an administrator. Every "
                          "sign-in was ended."))


# ---- mail -------------------------------------------------------------------------------

def _link_message(user: User, token: str, t: int):
    """The link, in the language of the page that asked for it."""
    conf = current_app.config
    service, issuer = conf["TOTP_ISSUER"], conf["ISSUER"]
    minutes = conf["PASSWORD_RESET_LIFETIME"] // 60
    lines = [notices.hello(user), "",
             gettext("Someone asked to reset the password of the %(service)s account "
                     "\"%(username)s\" (%(issuer)s). If it was you, open this link to choose "
                     "a new password:", service=service, username=user.username,
                     issuer=issuer), "", f"{issuer}/reset/{token}", "",
             gettext("The link works once and expires at %(when)s (%(minutes)s minutes after "
                     "it was sent). Choosing a new password ends every sign-in; two-step "
                     "sign-in, if you use it, stays as it is.",
                     when=format_when(t + conf["PASSWORD_RESET_LIFETIME"]), minutes=minutes),
             "", gettext("If you did not ask for this, you can ignore this message: your "
                         "password stays as it is.")]
    return mail.message(str(user.email), gettext("Reset your %(service)s password",
                                                 service=service), lines, t)


def _notify(user: User, changed: str) -> None:
    """The "your password was changed" notice (:func:`authserver.services.notices.send`):
    ``changed`` is its first sentence."""
    forgot = f"{current_app.config['ISSUER']}/forgot"
    notices.send(user, gettext("Your password was changed"), changed, [gettext(
        "If it was not you, someone else may know your password or read your e-mail: "
        "choose a new password at once at %(url)s, and tell your administrator.",
        url=forgot)], "password notice")


# ---- logs -------------------------------------------------------------------------------

#: A /reset/<token> path inside a log line (not the tokenless /reset/done page).
_LINK_IN_LOG = re.compile(r"(/reset/)(?!done(?:[\s\"'?#/]|$))[^\s\"'?#/]+")


class _RedactResetLinks(logging.Filter):
    """Replace the token of a ``/reset/<token>`` path in a log line with ``[redacted]``
    (access logs print the request line, which holds the token)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a malformed record is the logging machinery's problem
            return True
        if "/reset/" in text:
            record.msg, record.args = _LINK_IN_LOG.sub(r"\1[redacted]", text), None
        return True


_REDACT = _RedactResetLinks()
#: Loggers that print request paths.
_PATH_LOGGERS = ("werkzeug", "gunicorn.access", "gunicorn.error", "authserver.web")


def redact_reset_links_in_logs() -> None:
    """Attach the redacting filter to the loggers that print request paths (idempotent)."""
    for name in _PATH_LOGGERS:
        logger = logging.getLogger(name)
        if _REDACT not in logger.filters:
            logger.addFilter(_REDACT)
