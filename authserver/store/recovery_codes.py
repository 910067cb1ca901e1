"""Recovery codes: an account's one-time two-step codes, stored only as digests
(:func:`authserver.auth.recovery_codes.digest`); callers pass digests, never codes.

- Not found: :func:`spend_code` answers False for a digest the account does not hold, the
  same as for one it has used (the caller counts both as a wrong code).
- Reuse: a code is spent once. :func:`spend_code` is one conditional UPDATE (``used_at`` still
  empty) through :func:`~authserver.store._db.consume`: of two racing uses of one code, one
  wins. It joins the caller's unit of work (``commit=False``), so the spend lands with its
  audit row, and a rollback gives the code back.
- Replacement: :func:`replace_codes` deletes every code of the account (used or not) and adds
  the new set, in the caller's unit of work: the old codes stop working when it commits.
- No expiry: a code lasts until used, replaced, or the second step is removed
  (:func:`delete_codes`).
"""

from __future__ import annotations

from sqlalchemy import delete, func, select

from authserver.extensions import db
from authserver.models import RecoveryCode
from authserver.store._db import Outcome, consume

__all__ = ["replace_codes", "delete_codes", "spend_code", "remaining", "last_used_at"]


def replace_codes(user_id: int, digests: list[str], t: int) -> None:
    """The account's codes become exactly ``digests`` (all unused), created at ``t``."""
    delete_codes(user_id)
    db.session.add_all(RecoveryCode(user_id=user_id, code_hash=h, created_at=t)
                       for h in digests)


def delete_codes(user_id: int) -> None:
    """Forget every code of the account (a no-op when it has none)."""
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))


def spend_code(user_id: int, digest: str, t: int) -> bool:
    """Mark the account's unused code with this digest used at ``t``. False when the account
    has no such code, or it was used before (also by a racing request)."""
    rc = RecoveryCode
    return consume(rc, key=(rc.user_id == user_id, rc.code_hash == digest),
                   live=(rc.used_at.is_(None),), values={"used_at": t},
                   commit=False) is Outcome.WON


def remaining(user_id: int) -> int:
    """How many unused codes the account holds."""
    return int(db.session.scalar(select(func.count()).select_from(RecoveryCode).where(
        RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))) or 0)


def last_used_at(user_id: int) -> int | None:
    """When the account last used a code of its current set, or None (none used)."""
    return db.session.scalar(select(func.max(RecoveryCode.used_at)).where(
        RecoveryCode.user_id == user_id))
