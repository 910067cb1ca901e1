"""End users and their sign-in sessions. Times are integer Unix seconds (UTC)."""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from authserver.extensions import db
from authserver.smart.roles import Role


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    #: NFKC-normalised, case-folded ``username``: usernames are unique case-insensitively
    #: and sign-in looks users up by this key.
    username_key: Mapped[str] = mapped_column(String(150), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    #: argon2id PHC string; never the password.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    #: e.g. "Patient/123" or "Practitioner/9"
    fhir_user: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(255))
    #: TOTP secret, AES-GCM encrypted under the key-encryption key.
    totp_secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: The last accepted TOTP time-step: a code is accepted once only.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    #: The TOTP step is refused until then (too many wrong codes across sign-ins).
    totp_locked_until: Mapped[int | None] = mapped_column(BigInteger)
    #: How many TOTP lockouts in a row: each one lasts twice as long as the one before.
    totp_lockouts: Mapped[int] = mapped_column(Integer, default=0)
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[int] = mapped_column(BigInteger)

    @property
    def has_totp(self) -> bool:
        return self.totp_secret_enc is not None

    @property
    def second_factor_required(self) -> bool:
        """Sign-in asks for a TOTP code: one is enrolled, or the role requires one."""
        role = Role.parse(self.role)
        return self.has_totp or (role is not None and role.requires_totp)

    def __repr__(self) -> str:
        return f"<User {self.id} {self.username!r} {self.role}>"


class UserSession(db.Model):
    """A sign-in. ``online_access`` grants live only while their session lives."""

    __tablename__ = "user_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    auth_time: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    ended_at: Mapped[int | None] = mapped_column(BigInteger)
    #: What the account page shows of the sign-in: the browser (User-Agent, cut to 255),
    #: the client address, and when the session was last used.
    user_agent: Mapped[str | None] = mapped_column(String(255))
    ip: Mapped[str | None] = mapped_column(String(64))
    last_seen_at: Mapped[int | None] = mapped_column(BigInteger)


class RecoveryCode(db.Model):
    """A one-time two-step recovery code, stored as its SHA-256 (the codes are random, 50+
    bits, shown once); ``used_at`` is set by a conditional UPDATE (single use)."""

    __tablename__ = "recovery_codes"
    __table_args__ = (UniqueConstraint("user_id", "code_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[int | None] = mapped_column(BigInteger)


class PasswordReset(db.Model):
    """A forgotten-password link: stored as the SHA-256 of its token, single use (a
    conditional UPDATE sets ``used_at``), short lived."""

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[int | None] = mapped_column(BigInteger)
