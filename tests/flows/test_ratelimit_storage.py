"""The rate-limit storages: the database one (default) on the test database — SQLite, or
PostgreSQL on the PostgreSQL leg — and Redis when configured. limits' storage API:
https://limits.readthedocs.io/en/stable/custom-storage.html
"""

from __future__ import annotations

import secrets
import threading

import pytest
from limits import RateLimitItemPerMinute
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy import func, select

from tests.conftest import base_config
from tests.helpers import csrf_of


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def storage(ctx):
    from authserver.extensions import db
    from authserver.ratelimit import DatabaseStorage

    return DatabaseStorage("authserver+db://", engine=db.engine, clock=Clock())


def _rows(ctx) -> int:
    from authserver.extensions import db
    from authserver.models import RateLimitCounter

    with db.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(RateLimitCounter)).scalar_one()


def test_db_storage_is_the_default_and_flask_limiter_uses_it(app):
    from authserver.extensions import limiter
    from authserver.ratelimit import DatabaseStorage

    assert app.config["RATELIMIT_STORAGE_URI"] == "authserver+db://"
    assert app.config["RATELIMIT_STRATEGY"] == "fixed-window"
    assert isinstance(limiter.storage, DatabaseStorage)
    assert isinstance(limiter.limiter, FixedWindowRateLimiter)


def test_db_storage_counts_within_the_window_and_restarts_after_it(storage, ctx):
    clock = storage._clock
    assert storage.get("k") == 0 and storage.get_expiry("k") == clock.t
    assert [storage.incr("k", 60) for _ in range(3)] == [1, 2, 3]
    assert storage.incr("k", 60, amount=5) == 8
    assert storage.get("k") == 8
    assert storage.get_expiry("k") == clock.t + 60  # the window started at the first hit
    clock.t += 59.5
    assert storage.incr("k", 60) == 9  # a hit does not move the window
    assert storage.get_expiry("k") == 1_000_060.0
    clock.t += 0.5  # the window is over: the key reads as absent, the next hit starts over
    assert storage.get("k") == 0
    assert storage.incr("k", 60) == 1
    assert storage.get_expiry("k") == clock.t + 60
    storage.clear("k")
    assert storage.get("k") == 0
    assert storage.check() is True


def test_db_storage_prunes_expired_counters(storage, ctx):
    clock = storage._clock
    for i in range(5):
        storage.incr(f"old-{i}", 10)  # the first incr also prunes (nothing to prune yet)
    clock.t += 11
    storage.incr("fresh", 10)  # within PRUNE_INTERVAL: no prune yet
    assert _rows(ctx) == 6
    clock.t += storage.PRUNE_INTERVAL
    storage.incr("fresh", 100)
    assert _rows(ctx) == 1
    assert storage.reset() == 1 and _rows(ctx) == 0


def test_db_storage_stores_long_or_nul_keys_hashed(storage, ctx):
    long_key, nul_key = "x" * 10_000, "a\x00b"
    assert storage.incr(long_key, 60) == 1 and storage.incr(long_key, 60) == 2
    assert storage.incr(nul_key, 60) == 1
    assert storage.get(long_key) == 2 and storage.get(nul_key) == 1
    assert storage.get("x" * 9_999) == 0


def test_db_storage_incr_is_atomic_across_threads(storage, ctx):
    """Eight threads (each its own pooled connection, like workers) hit one key 25 times:
    no hit is lost and every hit sees a different count."""
    seen: list[int] = []
    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            for _ in range(25):
                seen.append(storage.incr("race", 60))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors, errors
    assert sorted(seen) == list(range(1, 201))
    assert storage.get("race") == 200


def test_db_storage_behind_the_fixed_window_strategy(storage, ctx):
    limiter = FixedWindowRateLimiter(storage)
    item = RateLimitItemPerMinute(3)
    assert [limiter.hit(item, "addr") for _ in range(4)] == [True, True, True, False]
    assert limiter.test(item, "other")
    stats = limiter.get_window_stats(item, "addr")
    assert stats.remaining == 0 and stats.reset_time == storage._clock.t + 60


# ---- Redis, when RATELIMIT_STORAGE_URI names one ----------------------------------------

REDIS_URL = "redis://127.0.0.1:6379/0"


def _redis_or_skip() -> None:
    redis = pytest.importorskip("redis", reason="the redis package is not installed")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")


def test_redis_storage_when_configured(template_db, tmp_path):
    """The sign-in limits on Redis (a key prefix of its own, removed afterwards)."""
    _redis_or_skip()
    from authserver import ratelimit
    from authserver.app import create_app
    from authserver.extensions import limiter
    from tests.conftest import _fresh_db

    prefix = "authserver-test-" + secrets.token_hex(6)
    app = create_app({**base_config(tmp_path / "inst", _fresh_db(template_db, tmp_path)),
                      "RATELIMIT_STORAGE_URI": REDIS_URL,
                      "RATELIMIT_STORAGE_OPTIONS": {"key_prefix": prefix},
                      "LOGIN_ACCOUNT_RATE_LIMIT": "3 per minute"})
    try:
        assert type(limiter.storage).__name__ == "RedisStorage" and limiter.storage.check()
        with app.test_request_context("/login"):
            # Counted per username key (NFKC, case-folded), atomically, in Redis.
            tries = [ratelimit.password_attempt(u) for u in ("alice", "ALICE", "Alice", "aLiCe")]
            assert [(a.number, a.last, a.refused) for a in tries] == [
                (1, False, False), (2, False, False), (3, True, False), (4, False, True)]
            assert tries[0].until is None
            assert tries[3].until == pytest.approx(tries[2].until, abs=1)
            assert ratelimit.password_attempt("bob").number == 1
            ratelimit.password_accepted("ALICE")
            assert ratelimit.password_attempt("alice").number == 1
        client = app.test_client()
        csrf = csrf_of(client.get("/login").text)
        answers = [client.post("/login", data={"csrf_token": csrf, "username": f"u{i}",
                                               "password": "wrong password"}).status_code
                   for i in range(21)]
        assert answers == [401] * 20 + [429]
    finally:
        limiter.storage.reset()  # deletes this prefix's keys only
        with app.app_context():
            from authserver.extensions import db

            db.session.remove()
            db.engine.dispose()
