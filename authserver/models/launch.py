"""EHR launch contexts and authorization requests parked while the user signs in."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from authserver.extensions import db


class LaunchContext(db.Model):
    """An EHR launch: single use, short lived, looked up by the SHA-256 of ``launch``."""

    __tablename__ = "launch_contexts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    launch_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str | None] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    #: The FHIR base (`iss`) the launch was made for; `aud` must equal it.
    aud: Mapped[str] = mapped_column(String(512))
    patient: Mapped[str | None] = mapped_column(String(64))
    encounter: Mapped[str | None] = mapped_column(String(64))
    fhir_context: Mapped[list[Any] | None] = mapped_column(JSON)
    intent: Mapped[str | None] = mapped_column(String(255))
    need_patient_banner: Mapped[bool] = mapped_column(default=True)
    smart_style_url: Mapped[str | None] = mapped_column(String(512))
    tenant: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    consumed_at: Mapped[int | None] = mapped_column(BigInteger)


class PendingAuthorization(db.Model):
    """A validated /authorize request kept server side (no cookie needed to resume it)."""

    __tablename__ = "pending_authorizations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: What validation established on arrival (redirect URI, audience, allowed scope, the
    #: launch's row id): later steps re-check only what can change since. None for a row
    #: parked before this column existed (read as expired: the app starts again).
    validated: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: Set once a user has signed in for this request (the request is theirs from then on).
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    patient: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
