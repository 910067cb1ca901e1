"""Accounts: users, sign-in sessions and the TOTP step of each account.

- Users: unknown and disabled look the same (None). Usernames match case-insensitively after
  NFKC normalisation; input that is not a valid username is unknown, never a 500.
- Sessions: a session is live until ended or expired; :func:`get_session` answers None for
  both. Ending an unknown session is a no-op.
- TOTP: :func:`accept_totp_step` accepts each time step of an account once (a conditional
  UPDATE: a replayed or older step loses, also across workers); :func:`lock_totp` locks the
  second step only if no one else counted the same lockout first.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    func,
    select,
    update,
)

from authserver import identifiers
from authserver.clock import now
from authserver.digests import new_secret
from authserver.extensions import db
from authserver.models import (
    User,
    UserSession,
)
from authserver.store._db import Outcome, consume


def get_user(user_id: int | None) -> User | None:
    if user_id is None:
        return None
    user = db.session.get(User, user_id)
    return user if user is not None and not user.disabled else None


def get_user_by_username(username: str) -> User | None:
    """The enabled user, or None: unknown and disabled users look the same to callers.
    Usernames match case-insensitively after NFKC normalisation (``User.username_key``)."""
    name = identifiers.username(username)
    if name is None:  # includes NUL, which PostgreSQL refuses in text: unknown, not a 500
        return None
    key = identifiers.username_key(name)
    user = db.session.scalars(select(User).where(User.username_key == key)).first()
    return user if user is not None and not user.disabled else None




def start_session(user: User, lifetime: int) -> UserSession:
    t = now()
    row = UserSession(id=new_secret(24), user_id=user.id, auth_time=t, expires_at=t + lifetime)
    db.session.add(row)
    return row


def end_session(session_id: str | None) -> None:
    if not session_id:
        return
    db.session.execute(update(UserSession).where(UserSession.id == session_id,
                                                 UserSession.ended_at.is_(None))
                       .values(ended_at=now()))


def get_session(session_id: str | None) -> UserSession | None:
    if not session_id or not isinstance(session_id, str):
        return None
    row = db.session.get(UserSession, session_id)
    if row is None or row.ended_at is not None or row.expires_at <= now():
        return None
    return row


def session_is_live(session_id: str) -> bool:
    return get_session(session_id) is not None


def _totp_open(t: int) -> Any:
    return User.totp_locked_until.is_(None) | (User.totp_locked_until <= t)


def accept_totp_step(user_id: int, step: int, t: int) -> bool:
    """Remember ``step`` as the user's last accepted TOTP time-step and end the run of
    lockouts (the next one is the first again; the end of the last one stays, as the point
    before which wrong codes no longer count). False (nothing changed) when that step or a
    later one was already accepted (a replay, or two racing submissions of one code: only
    one wins) or when the step is locked at ``t`` (a lockout that landed after the caller
    looked)."""
    return consume(User, key=(User.id == user_id,),
                   live=(_totp_open(t), User.totp_last_step.is_(None)
                         | (User.totp_last_step < step)),
                   values={"totp_last_step": step, "totp_lockouts": 0},
                   commit=False) is Outcome.WON


def lock_totp(user_id: int, lockouts: int, until: int, t: int) -> bool:
    """Lock the user's TOTP step until ``until`` and count the lockout, if at ``t`` it is
    open and ``lockouts`` lockouts were counted so far; False when another request locked it
    first (so two racing failures lock once, with one audit row)."""
    return consume(User, key=(User.id == user_id,),
                   live=(_totp_open(t), func.coalesce(User.totp_lockouts, 0) == lockouts),
                   values={"totp_locked_until": until, "totp_lockouts": lockouts + 1},
                   commit=False) is Outcome.WON


def enrol_totp_once(user_id: int, sealed_secret: bytes, step: int) -> bool:
    """Save a confirmed TOTP secret (and the step that confirmed it) unless the account has
    one already: a second enrolment page (say, an attacker who also has the password and
    opened it earlier) can never replace a secret the user confirmed. False: it had one.
    In the caller's unit of work."""
    return consume(User, key=(User.id == user_id,), live=(User.totp_secret_enc.is_(None),),
                   values={"totp_secret_enc": sealed_secret, "totp_last_step": step},
                   commit=False) is Outcome.WON


def reload(user: User) -> None:
    """Forget what was loaded of ``user``: the next attribute read sees the database (after
    a conditional UPDATE that did not go through the object)."""
    db.session.expire(user)
