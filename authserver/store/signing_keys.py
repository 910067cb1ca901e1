"""Signing-key rows: the public JWK and the private key sealed under the key-encryption key.

A key is active until retired (``retired_at``); retired keys stay (their public half is
published until every token they signed has expired, :mod:`authserver.keys`). Nothing is
deleted here, and nothing commits: key creation and rotation run as one unit of work.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from authserver.extensions import db
from authserver.models import SigningKey


def add_key(**fields: Any) -> SigningKey:
    row = SigningKey(**fields)
    db.session.add(row)
    return row


def active_keys() -> list[SigningKey]:
    return list(db.session.scalars(select(SigningKey).where(SigningKey.retired_at.is_(None))))


def all_keys() -> list[SigningKey]:
    """Every key, newest first."""
    return list(db.session.scalars(select(SigningKey).order_by(SigningKey.created_at.desc())))


def newest_active(alg: str) -> SigningKey | None:
    """The newest active key for ``alg``, or None."""
    return db.session.scalars(
        select(SigningKey).where(SigningKey.alg == alg, SigningKey.retired_at.is_(None))
        .order_by(SigningKey.created_at.desc()).limit(1)).first()
