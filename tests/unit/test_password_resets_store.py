"""The forgotten-password links' store verbs (authserver/store/password_resets.py) and their
stated semantics: unknown, expired and used read alike as not live; ``consume`` wins once,
then answers REPLAYED, and GONE for an expired or withdrawn link; the spend is part of the
caller's unit of work (a rollback gives the link back); ``withdraw_unused`` keeps used rows;
``end_sessions_of(keep=...)`` keeps one session."""

from __future__ import annotations

import pytest

from authserver import store
from authserver.digests import sha256_hex
from tests.helpers import make_user

T = 1_900_000_000


@pytest.fixture
def user_id(ctx) -> int:
    return make_user(ctx)["id"]


def _add(user_id: int, token: str, created: int = T, lifetime: int = 1800) -> int:
    with store.transaction():
        row = store.password_resets.add(user_id=user_id, token_hash=sha256_hex(token),
                                        created_at=created, expires_at=created + lifetime)
    return row.id


def test_live_until_expiry_then_not(user_id):
    _add(user_id, "tok-a")
    assert store.password_resets.live(sha256_hex("tok-a"), T + 1799).user_id == user_id
    assert store.password_resets.live(sha256_hex("tok-a"), T + 1800) is None
    assert store.password_resets.live(sha256_hex("no such token"), T) is None


def test_consume_wins_once_then_replayed(user_id):
    rid = _add(user_id, "tok-b")
    with store.transaction():
        assert store.password_resets.consume(rid, T + 5) is store.Outcome.WON
    with store.transaction():
        assert store.password_resets.consume(rid, T + 6) is store.Outcome.REPLAYED
    assert store.password_resets.live(sha256_hex("tok-b"), T + 7) is None


def test_consume_of_an_expired_or_unknown_link_is_gone(user_id):
    rid = _add(user_id, "tok-c")
    with store.transaction():
        assert store.password_resets.consume(rid, T + 1800) is store.Outcome.GONE
        assert store.password_resets.consume(10 ** 9, T) is store.Outcome.GONE


def test_consume_rolled_back_gives_the_link_back(user_id):
    rid = _add(user_id, "tok-d")
    with pytest.raises(RuntimeError), store.transaction():
        assert store.password_resets.consume(rid, T + 1) is store.Outcome.WON
        raise RuntimeError("the new password could not be saved")
    assert store.password_resets.live(sha256_hex("tok-d"), T + 2) is not None


def test_withdraw_unused_deletes_unused_links_and_keeps_used_ones(user_id):
    used = _add(user_id, "tok-used")
    with store.transaction():
        store.password_resets.consume(used, T + 1)
    _add(user_id, "tok-old", created=T - 4000)  # expired, unused
    _add(user_id, "tok-new", created=T + 2)
    with store.transaction():
        assert store.password_resets.withdraw_unused(user_id) == 2
    with store.transaction():
        assert store.password_resets.consume(used, T + 3) is store.Outcome.REPLAYED
    assert store.password_resets.live(sha256_hex("tok-new"), T + 3) is None


def test_last_issued_at_is_the_newest_live_link(user_id):
    assert store.password_resets.last_issued_at(user_id, T) is None
    _add(user_id, "tok-1", created=T)
    _add(user_id, "tok-2", created=T + 30)
    assert store.password_resets.last_issued_at(user_id, T + 40) == T + 30
    assert store.password_resets.last_issued_at(user_id, T + 30 + 1800) is None


def test_end_sessions_of_can_keep_one(ctx, user_id):
    user = store.accounts.get_user(user_id)
    with store.transaction():
        keep, other = (store.accounts.start_session(user, 3600) for _ in range(2))
    keep_id, other_id = keep.id, other.id
    with store.transaction():
        store.accounts.end_sessions_of(user_id, keep=keep_id)
    assert store.accounts.get_session(keep_id) is not None
    assert store.accounts.get_session(other_id) is None
    with store.transaction():
        store.accounts.end_sessions_of(user_id)
    assert store.accounts.get_session(keep_id) is None
