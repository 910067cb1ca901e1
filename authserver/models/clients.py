"""Registered clients (RFC 7591 metadata) and resource servers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from authserver.extensions import db
from authserver.smart.client_types import AuthMethod, GrantType


class Client(db.Model):
    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    #: SHA-256 hex of a 256-bit random secret; None for public and private_key_jwt clients.
    client_secret_hash: Mapped[str | None] = mapped_column(String(64))
    client_name: Mapped[str] = mapped_column(String(255))
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(40))
    #: RFC 7591 metadata as registered (redirect_uris, grant_types, scope, jwks, ...).
    client_metadata: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: 'app' | 'resource_server'
    kind: Mapped[str] = mapped_column(String(20), default="app")
    #: May create EHR launch contexts through POST /launch.
    can_launch: Mapped[bool] = mapped_column(default=False)
    #: May introspect tokens issued to other clients (set only by an administrator).
    can_introspect: Mapped[bool] = mapped_column(default=False)
    #: An administrator made or approved this app (the consent page says "not verified"
    #: otherwise).
    verified: Mapped[bool] = mapped_column(default=False)
    #: Clinicians' EHR launches of this app skip the consent page (an administrator's
    #: decision; never for patients).
    pre_approved: Mapped[bool] = mapped_column(default=False)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[int] = mapped_column(BigInteger)

    # ---- metadata accessors -------------------------------------------------------
    @property
    def redirect_uris(self) -> list[str]:
        return list(self.client_metadata.get("redirect_uris") or [])

    @property
    def grant_types(self) -> list[str]:
        return list(self.client_metadata.get("grant_types") or [GrantType.AUTHORIZATION_CODE.value])

    @property
    def scope(self) -> str:
        return str(self.client_metadata.get("scope") or "")

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == AuthMethod.NONE

    def __repr__(self) -> str:
        return f"<Client {self.client_id} {self.client_name!r}>"


class ClientOrigin(db.Model):
    """The web origin of one of a client's redirect URIs: CORS checks are an indexed
    lookup by origin, not a scan of every client's metadata."""

    __tablename__ = "client_origins"

    origin: Mapped[str] = mapped_column(String(255), primary_key=True)
    client_id: Mapped[str] = mapped_column(
        ForeignKey("clients.client_id", ondelete="CASCADE"), primary_key=True, index=True)


class RegistrationToken(db.Model):
    """An RFC 7591 initial access token an administrator issued, stored by its SHA-256."""

    __tablename__ = "registration_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    #: How many registrations it allows; ``uses`` counts them (a conditional UPDATE).
    max_uses: Mapped[int] = mapped_column(Integer, default=1)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)
    note: Mapped[str | None] = mapped_column(String(255))
