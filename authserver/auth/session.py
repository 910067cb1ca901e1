"""Sign-in state in the Flask session, backed by a server-side :class:`UserSession` row.

The cookie holds only the session id (signed); signing out ends the row, which ends every
``online_access`` grant made under it. The session is renewed at each sign-in.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from flask import current_app, g, request, session

from authserver import audit, clock, ratelimit, store
from authserver.auth import passwords, recovery_codes, totp
from authserver.auth.secrets_box import unseal

if TYPE_CHECKING:
    from authserver.models import User, UserSession

__all__ = [
    "current_user", "current_session", "check_password", "SignInLocked",
    "begin_second_factor", "pending_user", "verify_totp", "TotpOutcome", "totp_locked_until",
    "sign_in", "sign_out", "safe_next", "MAX_TOTP_FAILURES", "MAX_TOTP_LOCKOUT_SECONDS",
    "totp_failures", "enrolment_secret", "confirm_enrolment", "SECOND_FACTOR_SECONDS",
    "SEEN_EVERY", "abandon_second_factor", "issue_recovery_codes", "replace_totp",
]

#: Wrong TOTP codes allowed per sign-in before it starts over.
MAX_TOTP_FAILURES = 5
#: The longest a TOTP lockout lasts, however many came before it (each one doubles).
MAX_TOTP_LOCKOUT_SECONDS = 24 * 3600
#: Seconds between the password and the second step (TOTP or enrolment) before starting over.
SECOND_FACTOR_SECONDS = 600


#: The account page's "last seen" of a session is written at most this often (seconds).
SEEN_EVERY = 60


def current_session() -> UserSession | None:
    """The live session of this request's cookie, or None. The first look in a request
    also records that the session was used, at most once per :data:`SEEN_EVERY`."""
    if "auth_session" not in g:
        row = store.accounts.get_session(session.get("sid"))
        t = clock.now()
        if row is not None and (row.last_seen_at is None or
                                row.last_seen_at <= t - SEEN_EVERY):
            with store.transaction():
                store.accounts.mark_seen(row.id, t, SEEN_EVERY)
        g.auth_session = row
    return g.auth_session


def current_user() -> User | None:
    row = current_session()
    return store.accounts.get_user(row.user_id) if row is not None else None


class SignInLocked(Exception):
    """Too many wrong passwords for this username (LOGIN_ACCOUNT_RATE_LIMIT): refused until
    ``until`` (Unix time), whatever the password. Raised alike for a username no account
    has, so it reveals nothing."""

    def __init__(self, until: float) -> None:
        super().__init__("sign-in locked for this username")
        self.until = until


@store.transaction()
def check_password(username: str, password: str) -> User | None:
    """The user if the password is right; None otherwise, in about the same time whether
    or not the username exists. Rehashes when the hashing parameters changed.

    Each attempt is counted against the username (known or not) before the password is
    looked at: over LOGIN_ACCOUNT_RATE_LIMIT it raises :class:`SignInLocked` instead. A
    right password starts the count over; the wrong one that reaches the limit is recorded
    as ``login.password_locked`` (once per lockout)."""
    name = username if isinstance(username, str) else ""
    attempt = ratelimit.password_attempt(name)
    if attempt.refused:
        raise SignInLocked(attempt.until or clock.now())
    user = store.accounts.get_user_by_username(name)
    ok, rehash = passwords.verify_password(user.password_hash if user else None, password)
    if not ok or user is None:
        audit.record("login.failed", user_id=user.id if user else None)
        if attempt.last:
            audit.record("login.password_locked", user_id=user.id if user else None,
                         until=int(attempt.until or clock.now()))
        return None
    ratelimit.password_accepted(name)
    if rehash:
        user.password_hash = passwords.hash_password(password)
    return user


def begin_second_factor(user: User) -> None:
    """Password accepted; the TOTP step (or enrolment) comes next.

    The cookie is signed but not server-side state, so it can be replayed: what bounds the
    second step is kept where a replay cannot rewind it. ``pending_mark`` marks where this
    sign-in starts in the audit log, and wrong codes are counted there (per user, since that
    mark); ``pending_at`` bounds how long the password step stays good.
    """
    session.clear()
    session["pending_uid"] = user.id
    session["pending_at"] = clock.now()
    session["pending_mark"] = store.audit.audit_mark()


def pending_user() -> User | None:
    """The user who gave the right password in this sign-in, while the second step is due."""
    started = session.get("pending_at")
    if not isinstance(started, int) or clock.now() - started > SECOND_FACTOR_SECONDS:
        return None
    return store.accounts.get_user(session.get("pending_uid"))


def totp_failures(user: User) -> int:
    """Wrong TOTP codes of ``user`` since this sign-in's password step."""
    return store.audit.count_events_since("login.totp_failed", user.id,
                                      int(session.get("pending_mark") or 0))


def totp_secret(user: User) -> str | None:
    if user.totp_secret_enc is None:
        return None
    return unseal(user.totp_secret_enc, purpose=f"totp:{user.id}")


class TotpOutcome(enum.Enum):
    """What one submitted TOTP code led to."""

    OK = "ok"            # accepted: sign the user in
    WRONG = "wrong"      # refused; this sign-in may try again
    RESTART = "restart"  # MAX_TOTP_FAILURES in this sign-in: the password is due again
    LOCKED = "locked"    # the account's second step is locked (totp_locked_until)
    RECOVERED = "recovered"  # a recovery code was accepted (and spent): sign the user in


def totp_locked_until(user: User, t: int | None = None) -> int | None:
    """Until when (Unix time) the user's TOTP step is locked, or None when it is open."""
    until = user.totp_locked_until
    return until if until is not None and until > (clock.now() if t is None else t) else None


def _lock_after_too_many(user: User, t: int) -> int | None:
    """Lock the second step when the account's wrong codes within TOTP_LOCKOUT_WINDOW, in
    any sign-in, reached TOTP_LOCKOUT_FAILURES; returns the lock's end, or None. Wrong codes
    from before the last lockout ended never count twice. Each lockout in a row lasts twice
    as long as the one before (at most MAX_TOTP_LOCKOUT_SECONDS)."""
    conf = current_app.config
    since = max(t - conf["TOTP_LOCKOUT_WINDOW"] + 1, user.totp_locked_until or 0)
    if store.audit.count_events_at_or_after("login.totp_failed", user.id, since) \
            < conf["TOTP_LOCKOUT_FAILURES"]:
        return None
    lockouts = user.totp_lockouts or 0
    seconds = min(conf["TOTP_LOCKOUT_SECONDS"] * 2 ** min(lockouts, 32),
                  MAX_TOTP_LOCKOUT_SECONDS)
    with store.transaction():
        won = store.accounts.lock_totp(user.id, lockouts, t + seconds, t)
        if won:
            audit.record("login.totp_locked", user_id=user.id, until=t + seconds,
                         seconds=seconds, lockout=lockouts + 1)
    store.accounts.reload(user)
    # Lost the race: another request locked it first (or a sign-in just ended the run, and
    # then nothing is locked).
    return t + seconds if won else totp_locked_until(user, t)


def verify_totp(user: User, code: str, now: datetime | None = None) -> TotpOutcome:
    """Check a TOTP code, or a recovery code typed in its place, once: the accepted
    time-step is remembered and a recovery code spent, so replays are refused.

    While the account's second step is locked no code is looked at, not even the right one.
    A wrong recovery code counts as a wrong TOTP code. After :data:`MAX_TOTP_FAILURES` wrong
    codes (of this user, in this sign-in) the sign-in starts over: the pending state is
    cleared and the password must be given again. Across sign-ins, TOTP_LOCKOUT_FAILURES
    wrong codes within TOTP_LOCKOUT_WINDOW lock the step (audit ``login.totp_locked``); a
    successful TOTP code ends the run of lockouts."""
    t = clock.now()
    if totp_locked_until(user, t) is not None:
        return TotpOutcome.LOCKED
    if totp_failures(user) >= MAX_TOTP_FAILURES:  # e.g. a replayed cookie of a spent sign-in
        session.clear()
        return TotpOutcome.RESTART
    recovery = recovery_codes.normalise(code)
    if recovery is not None:
        if _spend_recovery_code(user, recovery, t):
            return TotpOutcome.RECOVERED
        return _wrong_code(user, t, recovery_code=True)
    secret = totp_secret(user)
    step = None
    if secret:
        step = totp.verify(secret, code if isinstance(code, str) else "",
                           now or datetime.now(UTC), user.totp_last_step)
    if step is None:
        return _wrong_code(user, t, recovery_code=False)
    # Conditional update: two racing submissions of the same code cannot both pass, and a
    # lockout that landed meanwhile wins over the code.
    with store.transaction():
        accepted = store.accounts.accept_totp_step(user.id, step, t)
    store.accounts.reload(user)
    return TotpOutcome.OK if accepted else TotpOutcome.WRONG


def _wrong_code(user: User, t: int, *, recovery_code: bool) -> TotpOutcome:
    """Count one wrong code, then lock or restart when that was one too many."""
    with store.transaction():  # counted at once: racing sign-ins see each other's
        audit.record("login.totp_failed", user_id=user.id, recovery_code=recovery_code)
    if _lock_after_too_many(user, t) is not None:
        session.clear()  # this sign-in is spent too
        return TotpOutcome.LOCKED
    if totp_failures(user) >= MAX_TOTP_FAILURES:
        session.clear()
        return TotpOutcome.RESTART
    return TotpOutcome.WRONG


def _spend_recovery_code(user: User, code: str, t: int) -> bool:
    """Spend one of the user's recovery codes (single use: of two racing sign-ins with one
    code, one wins); audited with how many are left, in the same unit of work."""
    with store.transaction():
        won = store.recovery_codes.spend_code(user.id, recovery_codes.digest(user.id, code), t)
        if won:
            audit.record("login.recovery_code_used", user_id=user.id,
                         remaining=store.recovery_codes.remaining(user.id))
    return won


def issue_recovery_codes(user_id: int, event: str) -> list[str]:
    """A fresh set of recovery codes for the account, replacing every old one, in the
    caller's unit of work (audited as ``event``). The codes, as shown to people: this is the
    only time they exist outside the person's hands (only digests are stored)."""
    codes = recovery_codes.new_codes()
    store.recovery_codes.replace_codes(user_id, [recovery_codes.digest(user_id, c)
                                                 for c in codes], clock.now())
    audit.record(event, user_id=user_id, count=len(codes))
    return [recovery_codes.display(c) for c in codes]


@store.transaction()
def sign_in(user: User) -> UserSession:
    """Start a fresh session (a new id and cookie: no fixation), noting the browser's
    User-Agent and the client address (behind a proxy, ProxyFix's, when configured) for the
    account page's list of sessions."""
    session.clear()
    row = store.accounts.start_session(user, current_app.config["SESSION_LIFETIME"],
                                       user_agent=request.headers.get("User-Agent"),
                                       ip=request.remote_addr)
    session["sid"] = row.id
    session.permanent = True
    g.auth_session = row
    audit.record("login.succeeded", user_id=user.id)
    return row


@store.transaction()
def sign_out() -> None:
    row = current_session()
    if row is not None:
        store.accounts.end_session(row.id)
        audit.record("logout", user_id=row.user_id)
    session.clear()
    g.pop("auth_session", None)


def safe_next(target: str | None, default: str = "/account") -> str:
    """Only same-site relative paths: never an open redirect."""
    if not target or not isinstance(target, str) or len(target) > 2048:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") \
            or "\\" in target:
        return default
    return target


def enrolment_secret(user: User) -> str:
    """The secret being enrolled in this sign-in (made once, kept sealed in the cookie)."""
    import base64

    blob = session.get("enrol_secret")
    purpose = f"enrol:{user.id}"
    if blob:
        secret = unseal(base64.b64decode(blob), purpose=purpose)
        if secret:
            return secret
    from authserver.auth.secrets_box import seal

    secret = totp.new_secret()
    session["enrol_secret"] = base64.b64encode(seal(secret, purpose=purpose)).decode()
    return secret


def _confirmed(user: User, code: str, now: datetime | None) -> tuple[bytes, int] | None:
    """(the sealed secret being enrolled, the step ``code`` matched), or None: wrong code."""
    from authserver.auth.secrets_box import seal

    secret = enrolment_secret(user)
    step = totp.verify(secret, code if isinstance(code, str) else "", now or datetime.now(UTC),
                       None)
    return None if step is None else (seal(secret, purpose=f"totp:{user.id}"), step)


def confirm_enrolment(user: User, code: str, now: datetime | None = None) -> list[str] | None:
    """Save the enrolled secret once a code from it is right, and make the account's
    recovery codes; returns them (to be shown once), or None when nothing was saved."""
    found = _confirmed(user, code, now)
    if found is None:
        return None
    codes = None
    # Conditional update: a second enrolment page (say, an attacker who also has the password
    # and opened it earlier) can never replace a secret the user has already confirmed.
    with store.transaction():
        if store.accounts.enrol_totp_once(user.id, *found):
            audit.record("user.totp_enrolled", user_id=user.id)
            codes = issue_recovery_codes(user.id, "user.recovery_codes_created")
    store.accounts.reload(user)
    if codes is not None:
        session.pop("enrol_secret", None)
    return codes


def replace_totp(user: User, code: str, now: datetime | None = None) -> bool:
    """Put the secret being enrolled in place of the account's one, once a code from it is
    right (the caller has checked the person again). The recovery codes stay."""
    found = _confirmed(user, code, now)
    if found is None:
        return False
    with store.transaction():
        store.accounts.replace_totp(user.id, *found)
        audit.record("user.totp_replaced", user_id=user.id)
    store.accounts.reload(user)
    session.pop("enrol_secret", None)
    return True


def abandon_second_factor() -> None:
    """"Not you? Start over": forget the half-done sign-in (password given, second step not
    yet), and the secret being enrolled in it. A finished sign-in is left alone."""
    for key in ("pending_uid", "pending_at", "pending_mark", "enrol_secret"):
        session.pop(key, None)
