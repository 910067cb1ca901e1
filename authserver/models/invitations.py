"""Invitations: an administrator invites a person by e-mail; the link is single use.

Looked up by the SHA-256 of the token (the token itself is only ever in the e-mail).
Times are integer Unix seconds (UTC).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from authserver.extensions import db


class Invitation(db.Model):
    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: SHA-256 (hex) of a 256-bit random token; never the token.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(255), index=True)
    #: a :class:`~authserver.models.users.Role` value (the role the new user gets)
    role: Mapped[str] = mapped_column(String(20))
    fhir_user: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    invited_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    #: Set once, by a conditional UPDATE: the link works once.
    accepted_at: Mapped[int | None] = mapped_column(BigInteger)
    accepted_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))

    def __repr__(self) -> str:
        return f"<Invitation {self.id} {self.role}>"
