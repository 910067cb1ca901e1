"""Codes, grants and tokens.

A *grant* is one authorization of one client (by one user, or by the client itself for
client_credentials): every access token (JWT, claim ``gid``) and refresh token issued from
it belongs to it, so revoking the grant ends them all at once. Codes and refresh tokens are
stored only as SHA-256 hashes; access tokens are JWTs and are not stored, only their
revocations are (by ``jti``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from authserver.extensions import db


class AuthorizationCode(db.Model):
    __tablename__ = "authorization_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    session_id: Mapped[str | None] = mapped_column(String(64))
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    aud: Mapped[str] = mapped_column(String(512))
    nonce: Mapped[str | None] = mapped_column(Text)
    code_challenge: Mapped[str] = mapped_column(String(128))
    code_challenge_method: Mapped[str] = mapped_column(String(10))
    #: SMART launch context: patient, encounter, fhirContext, need_patient_banner, ...
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    auth_time: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    #: Set atomically when redeemed; a second redemption finds it set.
    consumed_at: Mapped[int | None] = mapped_column(BigInteger)
    #: The grant its tokens were issued under (revoked when the code is replayed).
    grant_id: Mapped[str | None] = mapped_column(String(32))

    # Accessors Authlib's grant reads (AuthorizationCodeMixin).
    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


class Grant(db.Model):
    __tablename__ = "grants"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    #: Set for online_access grants: they end with this sign-in session.
    session_id: Mapped[str | None] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(Text)
    aud: Mapped[str] = mapped_column(String(512))
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: The id_token's iss/sub/fhirUser when one was issued (SMART introspection).
    id_token_claims: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_used_at: Mapped[int] = mapped_column(BigInteger)
    #: When the last token of this grant stops working (updated on refresh).
    expires_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)


class RefreshToken(db.Model):
    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    client_id: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(Text)
    issued_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    #: Set atomically when exchanged for a new one; presenting it again revokes the grant.
    rotated_at: Mapped[int | None] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)


class RevokedToken(db.Model):
    """An access token revoked on its own (RFC 7009), kept until it would have expired."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    revoked_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class Consent(db.Model):
    """What a user let an app do; re-authorizing within it skips the consent page."""

    __tablename__ = "consents"
    __table_args__ = (UniqueConstraint("user_id", "client_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(String(64))
    #: What the user granted.
    scope: Mapped[str] = mapped_column(Text)
    #: What the app asked for: asking again for no more than this skips the consent page.
    requested: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)


class ClientAssertionJti(db.Model):
    """A private_key_jwt ``jti`` seen before: the unique constraint refuses replays
    across workers and instances sharing the database."""

    __tablename__ = "client_assertion_jtis"
    __table_args__ = (UniqueConstraint("client_id", "jti"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    jti: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
