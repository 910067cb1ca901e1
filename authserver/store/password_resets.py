"""Forgotten-password links: one row per link e-mailed, kept as the SHA-256 of its token
(OWASP Forgot Password Cheat Sheet: random, single use, short lived, stored hashed).

- Not found: an unknown token hash, an expired link and a used one all read as None
  (:func:`live`); callers do not tell them apart.
- Expiry: a link is live while ``now < expires_at``; the caller passes ``now``.
- Reuse: :func:`consume` spends a link once (a conditional UPDATE through
  :func:`authserver.store.consume`, in the caller's unit of work, so the spend lands with the
  new password or not at all); a second use answers REPLAYED, an unknown or expired link
  GONE. :func:`withdraw_unused` deletes a user's unused links when a new one is issued, so
  only the newest link works.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select

from authserver.extensions import db
from authserver.models import PasswordReset
from authserver.store._db import Outcome
from authserver.store._db import consume as _consume

__all__ = ["add", "live", "consume", "withdraw_unused", "last_issued_at"]


def add(*, user_id: int, token_hash: str, created_at: int, expires_at: int) -> PasswordReset:
    """Add a new link to the caller's unit of work."""
    row = PasswordReset(user_id=user_id, token_hash=token_hash, created_at=created_at,
                        expires_at=expires_at)
    db.session.add(row)
    return row


def live(token_hash: str, now: int) -> PasswordReset | None:
    """The link with this token hash if it is unused and not expired at ``now``, else None
    (unknown, expired and used look the same)."""
    row = db.session.scalars(select(PasswordReset).where(
        PasswordReset.token_hash == token_hash)).first()
    if row is None or row.used_at is not None or row.expires_at <= now:
        return None
    return row


def consume(reset_id: int, now: int) -> Outcome:
    """Spend the link: WON once; REPLAYED when it was used before; GONE when it is unknown,
    expired or withdrawn. In the caller's unit of work (``commit=False``): a rollback gives
    the link back (say, the new password could not be saved)."""
    r = PasswordReset
    return _consume(r, key=(r.id == reset_id,), live=(r.used_at.is_(None), r.expires_at > now),
                    values={"used_at": now}, spent=(r.used_at.is_not(None),), commit=False)


def withdraw_unused(user_id: int) -> int:
    """Delete the user's unused links (expired ones too); returns how many. Used links stay
    as the record of their use."""
    return db.session.execute(delete(PasswordReset).where(
        PasswordReset.user_id == user_id, PasswordReset.used_at.is_(None))).rowcount


def last_issued_at(user_id: int, now: int) -> int | None:
    """When the user's newest link that is still live at ``now`` was issued, or None."""
    return db.session.scalar(select(func.max(PasswordReset.created_at)).where(
        PasswordReset.user_id == user_id, PasswordReset.used_at.is_(None),
        PasswordReset.expires_at > now))
