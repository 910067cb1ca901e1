"""Scope ceilings an administrator set per role or per user, and shared rate-limit counters."""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from authserver.extensions import db


class ScopePolicy(db.Model):
    """The most a role's or one user's grants may hold (SMART scope grammar).

    ``subject`` is ``role:<role>`` or ``user:<user id>``; a user's row replaces their role's.
    """

    __tablename__ = "scope_policies"

    subject: Mapped[str] = mapped_column(String(80), primary_key=True)
    scope: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    updated_by: Mapped[int | None] = mapped_column(Integer)


class RateLimitCounter(db.Model):
    """One fixed-window rate-limit counter, shared by every worker and instance."""

    __tablename__ = "rate_limit_counters"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    #: Unix time (float seconds) at which the window ends and the count restarts.
    expires_at: Mapped[float] = mapped_column(Float, index=True)
