"""Accounts: the users an operator creates (CLI, admin console) and TOTP enrolment, and
invitations by e-mail. :func:`check_profile` is the one rule for the role and ``fhirUser`` a
new account may have, whichever way it is made.

An administrator invites a person, who follows a single-use link to choose a username and
password (clinicians and admins then enrol TOTP at their first sign-in, see
:mod:`authserver.views.enrol`).

The link carries a 256-bit random token. RFC 6749 §10.10: "The probability of an attacker
guessing generated tokens (and other credentials not intended for handling by end-users)
MUST be less than or equal to 2^(-128)". Only the token's SHA-256 is stored, so the
database never holds a usable link; the token is never logged nor written to the audit log
(OWASP Forgot Password Cheat Sheet: single use, expiring, stored hashed).
Mail is a plain-text RFC 5322 message sent over SMTP (RFC 5321) with the standard library.

- https://www.rfc-editor.org/rfc/rfc6749#section-10.10
- https://cheatsheetseries.owasp.org/cheatsheets/Forgot_Password_Cheat_Sheet.html
- https://www.rfc-editor.org/rfc/rfc5321 (SMTP), https://www.rfc-editor.org/rfc/rfc3207
  (STARTTLS), https://www.rfc-editor.org/rfc/rfc3834 (Auto-Submitted)
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

from flask import current_app
from sqlalchemy.exc import IntegrityError

from authserver import audit, clock, digests, identifiers, store
from authserver.auth import passwords, totp
from authserver.auth.secrets_box import seal
from authserver.i18n import as_role, format_when, gettext, translate
from authserver.services import mail
from authserver.services.admin_console import AdminError
from authserver.smart.roles import Role
from authserver.smart.words import N_, Words

if TYPE_CHECKING:
    from authserver.models import Invitation, User

__all__ = ["ProfileError", "check_profile", "create_user", "enrol_totp", "InvitationError",
           "InvalidInvitation", "MailError", "invite", "find", "describe", "accept",
           "redact_invite_links_in_logs", "pending", "email_address", "MAIL_TIMEOUT"]

log = logging.getLogger(__name__)

#: Seconds to wait for the mail server on connect and on every reply.
MAIL_TIMEOUT = 10
#: Bytes of randomness in a token (256 bits; RFC 6749 §10.10 asks for at least 128).
TOKEN_BYTES = 32

#: What ``secrets.token_urlsafe`` makes; anything else is refused before a lookup.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,128}")
#: WHATWG HTML "valid e-mail address" (what <input type=email> accepts); RFC 5321 §4.5.3.1.3
#: limits a path to 256 octets, so an address to 254.
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
                    r"[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
_MAX_EMAIL = 254
_MAX_NAME = 255
#: An /invite/<token> path inside a log line (access logs print the request line).
_LINK_IN_LOG = re.compile(r"(/invite/)[^\s\"'?#/]+")


class InvitationError(Exception):
    """One line for the page, in the reader's language (never a secret); ``status`` is the
    HTTP status to answer."""

    status = 400


class InvalidInvitation(InvitationError):
    """The link is unknown, has expired or was used already."""

    def __init__(self) -> None:
        super().__init__(gettext("This invitation link is unknown, has expired or has already "
                                 "been used. Ask your administrator for a new invitation."))


class MailError(InvitationError):
    """Mail is disabled or the mail server did not take the message."""

    status = 503


class ProfileError(ValueError):
    """A role or ``fhirUser`` a new account may not have (one line, no secret, as
    :class:`~authserver.smart.words.Words`: English for the command line, translated on a page)."""


# ---- users ----------------------------------------------------------------------------

def check_profile(role: object, fhir_user: str | None) -> str | None:
    """The role and ``fhirUser`` of a new account, whether the CLI, the admin console or an
    invitation makes it: a :class:`~authserver.models.users.Role`, and a ``fhirUser`` (when
    given) that is a person's ``Type/id`` reference, ``Patient/ID`` for a patient. Returns
    the normalised ``fhirUser`` (an empty one as given); raises :class:`ProfileError`."""
    if Role.parse(role) is None:
        raise ProfileError(Words(N_("Unknown role {role}"), role=repr(role)))
    if not fhir_user:
        return fhir_user
    normal = identifiers.fhir_user(fhir_user)
    if normal is None:
        raise ProfileError(Words(N_("The FHIR user {fhir_user} must look like Patient/ID or "
                                    "Practitioner/ID"), fhir_user=repr(fhir_user)))
    if role == Role.PATIENT and not normal.startswith("Patient/"):
        raise ProfileError(Words(N_("A patient's FHIR user must be Patient/ID")))
    return normal


@store.transaction()
def create_user(username: str, role: str, *, password: str | None = None,
                fhir_user: str | None = None, name: str | None = None,
                email: str | None = None) -> dict[str, Any]:
    """A user the operator adds (or an accepted invitation); :class:`AdminError` on bad
    input, worded for the CLI (as :class:`~authserver.smart.words.Words`, translated on a page)."""
    raw_username = username
    username = identifiers.username(username)
    if username is None:
        raise AdminError(Words(N_("username {username}: use letters, digits and . _ @ + -"),
                               username=repr(raw_username)))
    try:
        fhir_user = check_profile(role, fhir_user)
    except ProfileError as exc:
        raise AdminError(exc.args[0]) from None
    if password is not None:
        problem = passwords.check_password_policy(password, username)
        if problem:
            raise AdminError(Words(N_("password: {problem}"), problem=problem))
    key = identifiers.username_key(username)
    if store.accounts.find_username(username) is not None:
        raise AdminError(Words(N_("user {username} already exists"), username=repr(username)))
    user = store.accounts.add_user(
        username=username, username_key=key, role=role, fhir_user=fhir_user, name=name,
        email=email, password_hash=passwords.hash_password(password) if password else None,
        created_at=clock.now())
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


# ---- sending invitations --------------------------------------------------------------

def invite(email: str, role: str, *, fhir_user: str | None = None, name: str | None = None,
           invited_by: int | None) -> dict[str, Any]:
    """Create an invitation and e-mail its link to ``email`` (``invited_by``: the inviting
    user's id, or None for the operator at the command line).

    Raises :class:`MailError` when mail is disabled (empty ``SMTP_HOST``) or the server
    refuses the message (the invitation is then withdrawn), :class:`InvitationError` on bad
    input. Returns what the admin page shows; never the token.
    """
    conf = current_app.config
    if not conf["SMTP_HOST"]:
        raise MailError(gettext("E-mail is not configured (set AUTHSERVER_SMTP_HOST), so "
                                "invitations cannot be sent. Add the user directly instead."))
    email = _check_email(email)
    try:
        fhir_user = check_profile(role, (fhir_user or "").strip() or None)
    except ProfileError as exc:
        raise InvitationError(translate(exc.args[0])) from None
    name = _check_name(name)
    inviter = store.accounts.get_user(invited_by) if invited_by is not None else None
    if inviter is None and invited_by is not None:
        raise InvitationError(gettext("Only a known user can invite"))
    token = digests.new_secret(TOKEN_BYTES)
    t = clock.now()
    row = _store_and_send(dict(token_hash=digests.sha256_hex(token), email=email, role=role,
                               fhir_user=fhir_user, name=name, invited_by=invited_by,
                               created_at=t, expires_at=t + conf["INVITATION_LIFETIME"]),
                          token, inviter)
    with store.transaction():
        audit.record("user.invited", user_id=invited_by, invitation=row.id, email=email,
                     role=role, via="admin" if invited_by is not None else "cli")
    return {"id": row.id, "email": row.email, "role": row.role, "fhirUser": row.fhir_user,
            "expires_at": row.expires_at}


def _store_and_send(fields: dict[str, Any], token: str, inviter: User | None) -> Invitation:
    """Commit the invitation (``fields`` are its columns), then mail its link: no
    transaction is held open while mail is sent. A message the mail server does not take
    withdraws the invitation."""
    with store.transaction():
        row = store.accounts.add_invitation(**fields)
    try:
        _send(_message(row, token, inviter))
    except MailError:
        with store.transaction():
            store.accounts.delete_invitation(row)
        raise
    return row


def email_address(value: Any) -> str | None:
    """``value`` stripped when it looks like an e-mail address (what an invitation takes),
    else None."""
    try:
        return _check_email(value)
    except InvitationError:
        return None


def _check_email(email: Any) -> str:
    email = email.strip() if isinstance(email, str) else ""
    if not email or len(email) > _MAX_EMAIL or not _EMAIL.fullmatch(email):
        raise InvitationError(gettext("Enter a valid e-mail address"))
    return email


def _check_name(name: Any) -> str | None:
    """The invitee's name, whitespace collapsed (None when blank)."""
    name = " ".join(str(name or "").split()) or None
    if name and len(name) > _MAX_NAME:
        raise InvitationError(gettext("The name is longer than %(n)s characters", n=_MAX_NAME))
    return name


def _display(user: User | None) -> str:
    if user is None:  # the operator, at the command line
        return gettext("An administrator")
    name = " ".join((user.name or "").split())
    return f"{name} ({user.username})" if name else user.username


def _message(row: Invitation, token: str, inviter: User | None) -> EmailMessage:
    """The invitation, in the language of the administrator's page that sends it (English
    from the command line)."""
    conf = current_app.config
    service, issuer = conf["TOTP_ISSUER"], conf["ISSUER"]
    lines = [gettext("Hello %(name)s,", name=row.name) if row.name else gettext("Hello,"), "",
             gettext("%(inviter)s has invited you to %(service)s (%(issuer)s) %(as_role)s.",
                     inviter=_display(inviter), service=service, issuer=issuer,
                     as_role=as_role(row.role)), "",
             gettext("To accept, open this link and choose a username and password:"), "",
             f"{issuer}/invite/{token}", "",
             gettext("The link works once and expires on %(when)s.",
                     when=format_when(row.expires_at))]
    if Role(row.role).requires_totp:
        lines += [gettext("At your first sign-in you will set up two-step sign-in with an "
                          "authenticator app.")]
    lines += ["", gettext("If you did not expect this invitation, you can ignore this message.")]
    msg = mail.message(row.email, gettext("Your invitation to %(service)s", service=service),
                       lines, row.created_at)
    if msg is None:  # a header value with a line break (AUTHSERVER_SMTP_FROM / TOTP_ISSUER)
        raise MailError(gettext("AUTHSERVER_SMTP_FROM is not a usable sender address"))
    return msg


def _send(msg: EmailMessage) -> None:
    conf = current_app.config
    host, port = str(conf["SMTP_HOST"]), int(conf["SMTP_PORT"])
    try:
        with smtplib.SMTP(host, port, timeout=MAIL_TIMEOUT) as smtp:
            if conf["SMTP_STARTTLS"]:
                smtp.starttls(context=ssl.create_default_context())
            if conf["SMTP_USERNAME"]:
                smtp.login(str(conf["SMTP_USERNAME"]), str(conf["SMTP_PASSWORD"]))
            smtp.send_message(msg)
    except (smtplib.SMTPException, OSError) as exc:
        # The class name only: a server's reply may quote the message or the credentials.
        log.warning("invitation e-mail not sent via %s:%s: %s", host, port,
                    exc.__class__.__name__)
        raise MailError(gettext("The invitation e-mail could not be sent (%(error)s); check "
                                "AUTHSERVER_SMTP_HOST and try again.",
                                error=exc.__class__.__name__)) from None


# ---- accepting invitations ------------------------------------------------------------

def find(token: str) -> Invitation | None:
    """The live invitation of ``token``, or None when it is malformed, unknown, expired or
    already accepted (the four are not told apart)."""
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        return None
    row = store.accounts.invitation_by_hash(digests.sha256_hex(token))
    if row is None or row.accepted_at is not None or row.expires_at <= clock.now():
        return None
    return row


def describe(row: Invitation) -> dict[str, Any]:
    """What the invitation page shows: e-mail, role, name and who invited."""
    inviter = store.accounts.get_user(row.invited_by)
    return {"email": row.email, "role": row.role, "name": row.name,
            "inviter": _display(inviter) if inviter else gettext("An administrator"),
            "expires_at": row.expires_at}


def accept(token: str, username: str, password: str) -> User:
    """Create the invited user with ``username`` and ``password``; the link is spent.

    The invitation is consumed by a conditional UPDATE (``accepted_at IS NULL AND
    expires_at > now``) in the same transaction that creates the user, so of two racing
    requests one wins and the other gets :class:`InvalidInvitation`. A username or password
    the policy refuses raises :class:`InvitationError` and leaves the link usable.
    """
    row = find(token)
    if row is None:
        raise InvalidInvitation()
    role, fhir_user, name, email = row.role, row.fhir_user, row.name, row.email
    with store.transaction():  # the spent link and the new user land together, or neither
        if not store.accounts.spend_invitation(row.id, clock.now()):
            raise InvalidInvitation()
        try:
            created = create_user(username if isinstance(username, str) else "", role,
                                  password=password if isinstance(password, str) else "",
                                  fhir_user=fhir_user, name=name, email=email)
        except AdminError as exc:
            raise InvitationError(_friendly(exc.args[0])) from None
        except IntegrityError:  # the same username taken by a racing request
            raise InvitationError(gettext("The username %(username)s is taken",
                                          username=repr(username))) from None
        store.accounts.set_invitation_user(row.id, created["id"])
        audit.record("user.invitation_accepted", user_id=created["id"], invitation=row.id,
                     role=role)
    user = store.accounts.get_user(created["id"])
    assert user is not None
    return user


def _friendly(message: str) -> str:
    """:func:`create_user` speaks to the CLI; say the same to a person, in their language."""
    template = message.template if isinstance(message, Words) else message
    if template.startswith("username "):
        return gettext("Choose a username of letters, digits and . _ @ + - (at most 150)")
    if template.startswith("password: ") and isinstance(message, Words):
        return translate(message.values["problem"])
    if template.startswith("user ") and template.endswith("already exists"):
        return gettext("That username is taken; choose another")
    return translate(message)


# ---- logs -----------------------------------------------------------------------------

class _RedactInviteLinks(logging.Filter):
    """Replace the token of an ``/invite/<token>`` path in a log line with ``[redacted]``.

    Access logs (gunicorn's, werkzeug's) print the request line, which holds the token.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a malformed record is the logging machinery's problem
            return True
        if "/invite/" in text:
            record.msg, record.args = _LINK_IN_LOG.sub(r"\1[redacted]", text), None
        return True


_REDACT = _RedactInviteLinks()
#: Loggers that print request paths.
_PATH_LOGGERS = ("werkzeug", "gunicorn.access", "gunicorn.error", "authserver.web")


def redact_invite_links_in_logs() -> None:
    """Attach the redacting filter to the loggers that print request paths (idempotent)."""
    for name in _PATH_LOGGERS:
        logger = logging.getLogger(name)
        if _REDACT not in logger.filters:
            logger.addFilter(_REDACT)


def pending(limit: int = 100) -> list[Invitation]:
    """Invitations not yet accepted and not expired, newest first (for the admin page)."""
    return store.accounts.pending_invitations(clock.now(), limit)
