"""Accounts: users, sign-in sessions, the TOTP step of each account, and invitations.

- Users: unknown and disabled look the same (None). Usernames match case-insensitively after
  NFKC normalisation; input that is not a valid username is unknown, never a 500.
- Sessions: a session is live until ended or expired; :func:`get_session` answers None for
  both. Ending an unknown session is a no-op. :func:`mark_seen` writes ``last_seen_at`` at
  most once per interval (a conditional UPDATE).
- TOTP: :func:`accept_totp_step` accepts each time step of an account once (a conditional
  UPDATE: a replayed or older step loses, also across workers); :func:`lock_totp` locks the
  second step only if no one else counted the same lockout first. :func:`enrol_totp_once`
  saves a first secret only; :func:`replace_totp` and :func:`remove_totp` (the person's own
  choice on the account page, after their password) act on an unknown user as a no-op.
- Invitations: found by token hash; spent once (:func:`spend_invitation`) in the unit of
  work that creates the account, so a refused username leaves the link usable.
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
    Invitation,
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




#: The longest User-Agent and client address kept with a session (the columns' lengths).
USER_AGENT_MAX, IP_MAX = 255, 64


def start_session(user: User, lifetime: int, *, user_agent: str | None = None,
                  ip: str | None = None) -> UserSession:
    """A new session row (seen now), with what the account page shows of the sign-in: the
    User-Agent and client address, cut to their columns."""
    t = now()
    row = UserSession(id=new_secret(24), user_id=user.id, auth_time=t, expires_at=t + lifetime,
                      user_agent=(user_agent or None) and user_agent[:USER_AGENT_MAX],
                      ip=(ip or None) and ip[:IP_MAX], last_seen_at=t)
    db.session.add(row)
    return row


def mark_seen(session_id: str, t: int, every: int) -> None:
    """Record that the session was used at ``t``, unless that was recorded less than
    ``every`` seconds before (one conditional UPDATE: racing workers write it once).
    An unknown or ended session is left alone."""
    us = UserSession
    db.session.execute(update(us).where(
        us.id == session_id, us.ended_at.is_(None),
        us.last_seen_at.is_(None) | (us.last_seen_at <= t - every)).values(last_seen_at=t))


def live_sessions(user_id: int) -> list[UserSession]:
    """The user's sessions neither ended nor expired, most recently used first."""
    us = UserSession
    return list(db.session.scalars(select(us).where(
        us.user_id == user_id, us.ended_at.is_(None), us.expires_at > now())
        .order_by(func.coalesce(us.last_seen_at, us.auth_time).desc(), us.auth_time.desc())))


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


def replace_totp(user_id: int, sealed_secret: bytes, step: int) -> None:
    """Put a newly confirmed TOTP secret (and the step that confirmed it) in place of the
    account's one, whatever it was; the lockout state stays. In the caller's unit of work."""
    db.session.execute(update(User).where(User.id == user_id)
                       .values(totp_secret_enc=sealed_secret, totp_last_step=step))


def remove_totp(user_id: int) -> None:
    """Forget the account's TOTP secret and last step (a no-op when it has none). In the
    caller's unit of work."""
    db.session.execute(update(User).where(User.id == user_id)
                       .values(totp_secret_enc=None, totp_last_step=None))


def reload(user: User) -> None:
    """Forget what was loaded of ``user``: the next attribute read sees the database (after
    a conditional UPDATE that did not go through the object)."""
    db.session.expire(user)


def find_username(name: str) -> User | None:
    """The user (enabled or not) whose username matches ``name`` case-insensitively after
    NFKC normalisation, or None. For administration; sign-in uses
    :func:`get_user_by_username`, which hides disabled users."""
    key = identifiers.username_key(name)
    return db.session.scalars(select(User).where(User.username_key == key)).first()


def usernames_of(user_ids: list[int]) -> dict[int, str]:
    """``id -> username`` of the users among ``user_ids`` that exist."""
    if not user_ids:
        return {}
    return dict(db.session.execute(select(User.id, User.username)
                                   .where(User.id.in_(user_ids))).all())


def add_user(**fields: Any) -> User:
    """Add a new user (``fields`` are its columns); flushed, so its id is known and a racing
    duplicate username raises IntegrityError here, in the caller's unit of work."""
    user = User(**fields)
    db.session.add(user)
    db.session.flush()
    return user


def any_user(user_id: int) -> User | None:
    """The user with this id, enabled or not (administration), or None."""
    return db.session.get(User, user_id) if isinstance(user_id, int) else None


def all_users() -> list[User]:
    return list(db.session.scalars(select(User).order_by(User.username)))


def end_sessions_of(user_id: int, *, keep: str | None = None) -> int:
    """End every live sign-in session of the user but ``keep`` (their ``online_access``
    grants end with them); returns how many were ended."""
    us = UserSession
    where = [us.user_id == user_id, us.ended_at.is_(None), us.expires_at > now()]
    if keep is not None:
        where.append(us.id != keep)
    return db.session.execute(update(us).where(*where).values(ended_at=now())).rowcount


# ---- invitations: a one-use link (stored as SHA-256) that creates an account ------------

def add_invitation(**fields: Any) -> Invitation:
    """Add a new invitation (``fields`` are its columns) to the caller's unit of work."""
    row = Invitation(**fields)
    db.session.add(row)
    return row


def delete_invitation(row: Invitation) -> None:
    db.session.delete(row)


def invitation_by_hash(token_hash: str) -> Invitation | None:
    """The invitation with this token hash (accepted or expired ones too), or None."""
    return db.session.scalars(select(Invitation).where(
        Invitation.token_hash == token_hash)).first()


def spend_invitation(invitation_id: int, t: int) -> bool:
    """Mark the invitation accepted unless it was (or has expired) at ``t``; in the caller's
    unit of work, so a refused username gives the link back. Of two racing acceptances one
    wins."""
    inv = Invitation
    return consume(inv, key=(inv.id == invitation_id,),
                   live=(inv.accepted_at.is_(None), inv.expires_at > t),
                   values={"accepted_at": t}, commit=False) is Outcome.WON


def set_invitation_user(invitation_id: int, user_id: int) -> None:
    db.session.execute(update(Invitation).where(Invitation.id == invitation_id)
                       .values(accepted_user_id=user_id))


def pending_invitations(t: int, limit: int) -> list[Invitation]:
    """Invitations neither accepted nor expired at ``t``, newest first."""
    return list(db.session.scalars(
        select(Invitation).where(Invitation.accepted_at.is_(None), Invitation.expires_at > t)
        .order_by(Invitation.created_at.desc()).limit(limit)))
