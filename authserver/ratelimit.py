"""Rate limits counted once for every worker and instance, and the per-account sign-in limit.

Flask-Limiter decides (fixed-window strategy); the counters live in a `limits` storage
that every gunicorn worker and every instance shares:

- by default (``RATELIMIT_STORAGE_URI`` empty) the application's own database, through
  :class:`DatabaseStorage` (scheme ``authserver+db://``, table ``rate_limit_counters``);
- or any `limits` storage URI, e.g. ``redis://127.0.0.1:6379`` (``memory://`` counts per
  process: one worker only, or tests).

A per-process store (``memory://``) lets ``N`` workers grant ``N`` times the limit, so it is
never the default. The limits library documents the storage API this implements:
https://limits.readthedocs.io/en/stable/custom-storage.html

The per-account limit (:func:`password_attempt`, :func:`password_accepted`) counts sign-in
attempts per username key — NFKC, case-folded, then SHA-256, whether or not such an account
exists — so many addresses cannot guess one password, and the answer for an unknown
username is the same as for a known one. Each attempt is counted *before* its password is
checked (a burst of parallel guesses cannot all pass a check made before any is counted);
a right password starts the count over, so only wrong ones accumulate.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import limits
from flask import Flask, current_app
from limits.errors import ConfigurationError
from limits.storage import Storage
from sqlalchemy import Connection, Engine, bindparam, case, delete, select, text
from sqlalchemy.exc import SQLAlchemyError

from authserver.config import ConfigError, env_name
from authserver.extensions import db, limiter
from authserver.identifiers import username_key
from authserver.models import RateLimitCounter

__all__ = ["DatabaseStorage", "DB_STORAGE_URI", "init_app", "PasswordAttempt",
           "password_attempt", "password_accepted"]

#: What an empty RATELIMIT_STORAGE_URI means: the application's database.
DB_STORAGE_URI = "authserver+db://"
#: The scope (first key part) of the per-account counters.
ACCOUNT_SCOPE = "login-account"

_T = RateLimitCounter.__table__


def _dialect_insert(dialect: str) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # config.validate allows only these two
        raise ConfigurationError(f"authserver+db: no upsert for the {dialect} dialect")
    return insert


def _incr_statement(dialect: str) -> Any:
    """One atomic ``INSERT ... ON CONFLICT (key) DO UPDATE ... RETURNING count``: a new key
    starts at ``amount``; an expired one starts over (count and window); a live one adds
    ``amount``. Both SQLite and PostgreSQL evaluate every SET expression against the row as
    it was, so the two CASEs agree on whether the window had expired."""
    ins = _dialect_insert(dialect)(_T).values(
        key=bindparam("key"), count=bindparam("amount"), expires_at=bindparam("expires_at"))
    expired = _T.c.expires_at <= bindparam("now")
    return ins.on_conflict_do_update(
        index_elements=[_T.c.key],
        set_={"count": case((expired, ins.excluded["count"]),
                            else_=_T.c["count"] + ins.excluded["count"]),
              "expires_at": case((expired, ins.excluded.expires_at), else_=_T.c.expires_at)},
    ).returning(_T.c["count"])


_GET = select(_T.c["count"], _T.c.expires_at).where(
    _T.c.key == bindparam("key"), _T.c.expires_at > bindparam("now"))
_CLEAR = delete(_T).where(_T.c.key == bindparam("key"))
_PRUNE = delete(_T).where(_T.c.expires_at <= bindparam("now"))


class DatabaseStorage(Storage):
    """Fixed-window counters in the ``rate_limit_counters`` table of the app's database.

    Every call runs on its own short pooled connection in autocommit mode — never the
    request's ORM session, whose transaction the view commits or rolls back — so a count is
    durable the moment it is made, whatever the request does next. The engine is the
    current app's (``db.engine``) unless one is passed (``engine=``, for use outside a
    request). ``clock`` is injectable so window expiry can be tested exactly.

    Not found / expiry: an absent or expired key counts 0 and its expiry is "now"; an
    expired row is restarted by the next :meth:`incr` and deleted by a later prune.
    """

    STORAGE_SCHEME = ["authserver+db"]
    #: Seconds between two deletions of expired counters by one process (opportunistic:
    #: done by an :meth:`incr`, one indexed DELETE on ``expires_at``).
    PRUNE_INTERVAL = 60.0
    #: Longest key stored as is (the column's width); a longer key, or one holding a NUL
    #: (which PostgreSQL refuses in text), is stored as its SHA-256.
    MAX_KEY_LENGTH = 255

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False,
                 engine: Engine | None = None, clock: Callable[[], float] = time.time,
                 **options: Any) -> None:
        self._engine = engine
        self._clock = clock
        self._statements: dict[str, Any] = {}
        self._next_prune = 0.0
        self._lock = threading.Lock()
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return SQLAlchemyError

    # -- helpers ---------------------------------------------------------------------------

    def _connect(self) -> Connection:
        engine = self._engine if self._engine is not None else db.engine
        return engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def _key(self, key: str) -> str:
        if len(key) <= self.MAX_KEY_LENGTH and "\x00" not in key:
            return key
        return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()

    def _incr_for(self, conn: Connection) -> Any:
        name = conn.dialect.name
        stmt = self._statements.get(name)
        if stmt is None:
            stmt = self._statements[name] = _incr_statement(name)
        return stmt

    def _prune_due(self, now: float) -> bool:
        with self._lock:
            if now < self._next_prune:
                return False
            self._next_prune = now + self.PRUNE_INTERVAL
            return True

    # -- the limits Storage API --------------------------------------------------------------

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Add ``amount`` to ``key`` (its window is ``expiry`` seconds from the first hit);
        returns the new count, atomically even when workers race."""
        now = self._clock()
        with self._connect() as conn:
            count = conn.execute(self._incr_for(conn), {
                "key": self._key(key), "amount": amount, "expires_at": now + expiry,
                "now": now}).scalar_one()
            if self._prune_due(now):
                conn.execute(_PRUNE, {"now": now})
        return int(count)

    def get(self, key: str) -> int:
        with self._connect() as conn:
            row = conn.execute(_GET, {"key": self._key(key), "now": self._clock()}).first()
        return int(row[0]) if row is not None else 0

    def get_expiry(self, key: str) -> float:
        now = self._clock()
        with self._connect() as conn:
            row = conn.execute(_GET, {"key": self._key(key), "now": now}).first()
        return float(row[1]) if row is not None else now

    def check(self) -> bool:
        try:
            with self._connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            return False

    def reset(self) -> int | None:
        with self._connect() as conn:
            return conn.execute(delete(_T)).rowcount

    def clear(self, key: str) -> None:
        with self._connect() as conn:
            conn.execute(_CLEAR, {"key": self._key(key)})

    def prune(self) -> int:
        """Delete every expired counter now; returns how many."""
        with self._connect() as conn:
            return conn.execute(_PRUNE, {"now": self._clock()}).rowcount


def storage_uri(configured: str) -> str:
    """The limits storage URI for the RATELIMIT_STORAGE_URI setting (empty: the database)."""
    return configured.strip() or DB_STORAGE_URI


def init_app(app: Flask) -> None:
    """Bind Flask-Limiter to the shared storage (fixed window). An unknown scheme, or Redis
    without the ``redis`` package, stops start-up with one line naming the variable."""
    uri = storage_uri(str(app.config.get("RATELIMIT_STORAGE_URI") or ""))
    app.config.update(RATELIMIT_STORAGE_URI=uri, RATELIMIT_STRATEGY="fixed-window",
                      RATELIMIT_HEADERS_ENABLED=True)
    try:
        limiter.init_app(app)
    except ConfigurationError as exc:
        raise ConfigError(f"{env_name('RATELIMIT_STORAGE_URI')}: {exc}") from None


# ---- the per-account sign-in limit -------------------------------------------------------

@dataclass(frozen=True)
class PasswordAttempt:
    """One sign-in attempt counted against its username before the password is looked at
    (so a burst of parallel guesses cannot all slip under the limit)."""

    #: This attempt's number in the window, and the limit.
    number: int
    limit: int
    #: When the window ends (Unix time), once the attempts reached the limit; else None.
    until: float | None

    @property
    def refused(self) -> bool:
        """Over the limit: refuse without looking at the password (even a right one)."""
        return self.number > self.limit

    @property
    def last(self) -> bool:
        """The last one allowed: if its password is wrong, the username is locked now."""
        return self.number == self.limit


def _account_limit() -> limits.RateLimitItem:
    return limits.parse(current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"])


def _account_key(item: limits.RateLimitItem, username: str) -> str:
    digest = hashlib.sha256(
        username_key(username).encode("utf-8", "surrogatepass")).hexdigest()
    return item.key_for(ACCOUNT_SCOPE, digest)


def password_attempt(username: str) -> PasswordAttempt:
    """Count a sign-in attempt for ``username`` (known or not) in LOGIN_ACCOUNT_RATE_LIMIT's
    window. The count is atomic: of racing attempts, exactly one gets each number."""
    item = _account_limit()
    key = _account_key(item, username)
    number = limiter.storage.incr(key, item.get_expiry())
    until = limiter.storage.get_expiry(key) if number >= item.amount else None
    return PasswordAttempt(number, item.amount, until)


def password_accepted(username: str) -> None:
    """The right password was given: the username's count starts over (only wrong ones
    accumulate; someone who has the password gains nothing from this)."""
    item = _account_limit()
    limiter.storage.clear(_account_key(item, username))
