"""Counts of recent audit events (the TOTP failures of one sign-in): reads only; the audit
rows themselves are written by :mod:`authserver.audit`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    func,
    select,
)

from authserver.extensions import db
from authserver.models import (
    AuditEvent,
)


def audit_mark() -> int:
    """The id of the newest audit row (0 when none): later rows have larger ids."""
    return int(db.session.scalar(select(func.max(AuditEvent.id))) or 0)


def count_events_since(event: str, user_id: int, mark: int) -> int:
    """How many ``event`` rows for ``user_id`` were written after :func:`audit_mark` gave
    ``mark``. Kept in the database, so replaying an old cookie cannot reset the count."""
    return int(db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.id > mark, AuditEvent.event == event, AuditEvent.user_id == user_id)) or 0)


def count_events_at_or_after(event: str, user_id: int, at: int) -> int:
    """How many ``event`` rows for ``user_id`` carry a time ``at`` or later (the TOTP
    failures of one account within the lockout window, across sign-ins and workers)."""
    return int(db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.user_id == user_id, AuditEvent.event == event, AuditEvent.at >= at)) or 0)


def add_event(*, at: int, event: str, user_id: int | None, client_id: str | None,
              ip: str | None, detail: dict[str, Any]) -> None:
    """Add an audit row to the unit of work: it lands with what it records, or not at all."""
    db.session.add(AuditEvent(at=at, event=event, user_id=user_id, client_id=client_id,
                              ip=ip, detail=detail))


def recent(limit: int = 200) -> list[AuditEvent]:
    """The newest audit rows, newest first."""
    return list(db.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())
                                   .limit(limit)))
