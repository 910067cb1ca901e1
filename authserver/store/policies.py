"""Scope policies: an administrator's ceiling per role (``role:<role>``) or per user
(``user:<id>``). One row per subject; a missing row means the role's default applies.
Nothing commits here (the admin operation is the unit of work)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from authserver.extensions import db
from authserver.models import ScopePolicy


def scopes_of(subjects: Iterable[str]) -> dict[str, str]:
    """``subject -> scope`` of the policies among ``subjects`` (absent: none set)."""
    return dict(db.session.execute(select(ScopePolicy.subject, ScopePolicy.scope).where(
        ScopePolicy.subject.in_(tuple(subjects)))).all())


def put(subject: str, scope: str, at: int, by: int | None) -> None:
    """Set the subject's policy, replacing any earlier one."""
    row = db.session.get(ScopePolicy, subject)
    if row is None:
        db.session.add(ScopePolicy(subject=subject, scope=scope, updated_at=at, updated_by=by))
    else:
        row.scope, row.updated_at, row.updated_by = scope, at, by


def remove(subject: str) -> bool:
    """Delete the subject's policy; False when it had none."""
    row = db.session.get(ScopePolicy, subject)
    if row is None:
        return False
    db.session.delete(row)
    return True


def all_policies() -> list[ScopePolicy]:
    return list(db.session.scalars(select(ScopePolicy).order_by(ScopePolicy.subject)))
