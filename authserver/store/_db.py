"""The database handle the store's verbs share: one pooled autocommit connection for a
one-statement verb, and the reachability probe of ``/ready``.
"""

from __future__ import annotations

from sqlalchemy import (
    Connection,
    text,
)
from sqlalchemy.exc import SQLAlchemyError

from authserver.extensions import db


def database_reachable() -> bool:
    try:
        db.session.execute(text("SELECT 1"))
        return True
    except SQLAlchemyError:
        db.session.rollback()
        return False


def autocommit() -> Connection:
    """A pooled connection in autocommit mode: one statement, one round trip (no BEGIN and
    no ROLLBACK around it on PostgreSQL)."""
    return db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
