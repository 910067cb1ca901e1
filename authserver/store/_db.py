"""The database handle the store's verbs share, and the store's two transaction rules.

1. **Ordinary verbs never commit.** They add to, change or delete from the request's
   session; :func:`transaction` is the unit of work that commits them once, audit rows
   included, so that a multi-step operation (revoking a consent and its grants, disabling an
   app and its tokens) lands whole or not at all.
2. **Consume-before-issue verbs commit on their own**, through :func:`consume`: a single-use
   value (a code, a refresh token, a launch, a parked request's owner, an invitation) is
   spent by one conditional UPDATE that is committed before anything is issued, so two racing
   requests cannot both win, whatever the number of workers or instances.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Connection, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from authserver.extensions import db

_depth: ContextVar[int] = ContextVar("store_transaction_depth", default=0)


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


@contextmanager
def transaction() -> Iterator[None]:
    """The unit of work: what the block's verbs wrote is committed once when it ends, or
    rolled back when it raises. Nested blocks join the outermost one (only it commits)."""
    depth = _depth.get()
    token = _depth.set(depth + 1)
    try:
        yield
        if depth == 0:
            db.session.commit()
    except BaseException:
        if depth == 0:
            db.session.rollback()
        raise
    finally:
        _depth.reset(token)


class Outcome(enum.Enum):
    """What :func:`consume` did: this call spent the value (WON), it had been spent before
    (REPLAYED), or there is nothing to spend: unknown, expired or not this caller's (GONE)."""

    WON = "won"
    REPLAYED = "replayed"
    GONE = "gone"


def consume(model: Any, *, key: tuple[Any, ...], live: tuple[Any, ...],
            values: dict[str, Any], spent: tuple[Any, ...] | None = None,
            commit: bool = True) -> Outcome:
    """Spend a single-use row: ``UPDATE model SET values WHERE key AND live``, committed at
    once (with whatever the session holds), before the caller issues anything. With
    ``commit=False`` the spend joins the caller's unit of work instead, for a value whose
    spending and what it pays for land together or not at all (an invitation and the user
    it creates, a registration token's use and the client it registers, a TOTP step and the
    audit row): a rollback gives the value back.

    WON when this UPDATE changed the row. Otherwise REPLAYED when a row matching ``key`` and
    ``spent`` exists (``spent`` None: never), else GONE. The UPDATE is the decision: of two
    racing calls, the second waits for the first one's row lock (PostgreSQL) or the write
    lock (SQLite), then finds ``live`` false.
    """
    res = db.session.execute(update(model).where(*key, *live).values(**values))
    if commit:
        db.session.commit()
    if res.rowcount == 1:
        return Outcome.WON
    if spent is None:
        return Outcome.GONE
    found = db.session.execute(select(model.__table__.c[model.__mapper__.primary_key[0].key])
                               .where(*key, *spent).limit(1)).first()
    return Outcome.REPLAYED if found is not None else Outcome.GONE


def init_app(app: Any) -> None:
    """The unit of work's guard: a request that ends with writes no :func:`transaction`
    committed has lost them (the session is discarded). That is a bug; it is logged, and in
    tests recorded in ``app.extensions["store.uncommitted"]`` for the suite to fail on."""
    import logging

    from flask import request

    log = logging.getLogger("authserver.store")
    app.extensions["store.uncommitted"] = []

    @app.teardown_request
    def _writes_left_uncommitted(exc: BaseException | None) -> None:
        session = db.session
        if exc is None and (session.new or session.dirty or session.deleted):
            names = sorted({type(o).__name__ for o in (*session.new, *session.dirty,
                                                        *session.deleted)})
            log.error("%s %s ended with uncommitted writes (%s): dropped",
                      request.method, request.path, ", ".join(names))
            app.extensions["store.uncommitted"].append(f"{request.method} {request.path} "
                                                       f"{names}")
