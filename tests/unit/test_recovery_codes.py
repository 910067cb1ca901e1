"""Recovery codes: the pure rules (authserver/auth/recovery_codes.py) and the store's verbs
(authserver/store/recovery_codes.py) on the suite's database: stored as digests only, each
spent once, a new set replacing the old one whole."""

from __future__ import annotations

import math
import threading

from sqlalchemy import select

from tests.helpers import make_user


def test_new_codes_are_ten_distinct_codes_of_at_least_50_bits():
    from authserver.auth import recovery_codes as rc

    codes = rc.new_codes()
    assert len(codes) == rc.COUNT == 10 and len(set(codes)) == 10
    assert len(set(rc.ALPHABET)) == 32
    assert all(len(c) == rc.LENGTH and set(c) <= set(rc.ALPHABET) for c in codes)
    assert rc.LENGTH * math.log2(len(rc.ALPHABET)) >= 50
    assert not set(rc.ALPHABET) & set("ilou")  # nothing that reads as something else
    assert rc.new_codes() != codes  # random


def test_normalise_ignores_spaces_dashes_case_and_maps_lookalikes():
    from authserver.auth import recovery_codes as rc

    assert rc.normalise("abcde-12345") == "abcde12345"
    assert rc.normalise(" ABCDE 12345 ") == "abcde12345"
    assert rc.normalise("abcdE-1234-5") == "abcde12345"
    assert rc.normalise("Oabcd-I2L45") == "0abcd12145"  # o -> 0, i and l -> 1
    assert rc.display("abcde12345") == "abcde-12345"
    assert rc.normalise(rc.display("0abcd12145")) == "0abcd12145"


def test_normalise_refuses_what_cannot_be_a_code():
    from authserver.auth import recovery_codes as rc

    for typed in ("123456", "1234567890", "abcde1234", "abcde123456", "abcde-1234u",
                  "abcde-1234!", "", None, 42, "a" * 100):
        assert rc.normalise(typed) is None, typed


def test_digest_is_per_account_and_not_the_code():
    from authserver.auth import recovery_codes as rc

    assert rc.digest(1, "abcde12345") != rc.digest(2, "abcde12345")
    assert len(rc.digest(1, "abcde12345")) == 64 and "abcde" not in rc.digest(1, "abcde12345")


def _stored(user_id: int) -> list[str]:
    from authserver.extensions import db
    from authserver.models import RecoveryCode

    return list(db.session.scalars(select(RecoveryCode.code_hash)
                                   .where(RecoveryCode.user_id == user_id)))


def test_codes_are_stored_as_digests_only(ctx):
    from authserver import store
    from authserver.auth import recovery_codes as rc
    from authserver.auth import session as auth

    uid = make_user(ctx)["id"]
    with store.transaction():
        shown = auth.issue_recovery_codes(uid, "test.codes")
    assert len(shown) == 10 and all(len(c) == 11 and c[5] == "-" for c in shown)
    stored = _stored(uid)
    plain = {rc.normalise(c) for c in shown}
    assert sorted(stored) == sorted(rc.digest(uid, c) for c in plain)
    assert not plain & set(stored) and not set(shown) & set(stored)
    assert store.recovery_codes.remaining(uid) == 10


def test_a_code_is_spent_once(ctx):
    from authserver import store
    from authserver.auth import recovery_codes as rc

    uid = make_user(ctx)["id"]
    code = "abcde12345"
    with store.transaction():
        store.recovery_codes.replace_codes(uid, [rc.digest(uid, code)], 100)
    assert store.recovery_codes.last_used_at(uid) is None
    with store.transaction():
        assert store.recovery_codes.spend_code(uid, rc.digest(uid, code), 200)
    with store.transaction():
        assert not store.recovery_codes.spend_code(uid, rc.digest(uid, code), 300)
        assert not store.recovery_codes.spend_code(uid, rc.digest(uid, "zzzzz99999"), 300)
    assert store.recovery_codes.remaining(uid) == 0
    assert store.recovery_codes.last_used_at(uid) == 200


def test_a_code_is_not_another_accounts(ctx):
    from authserver import store
    from authserver.auth import recovery_codes as rc

    alice = make_user(ctx)["id"]
    bob = make_user(ctx, "bob", fhir_user="Patient/p2")["id"]
    with store.transaction():
        store.recovery_codes.replace_codes(alice, [rc.digest(alice, "abcde12345")], 100)
        # bob's row holds alice's digest: still not a code of bob's.
        assert not store.recovery_codes.spend_code(bob, rc.digest(alice, "abcde12345"), 200)
        assert not store.recovery_codes.spend_code(bob, rc.digest(bob, "abcde12345"), 200)
    assert store.recovery_codes.remaining(alice) == 1


def test_replacing_the_codes_drops_every_old_one(ctx):
    from authserver import store
    from authserver.auth import recovery_codes as rc

    uid = make_user(ctx)["id"]
    with store.transaction():
        store.recovery_codes.replace_codes(uid, [rc.digest(uid, "aaaaa11111"),
                                                 rc.digest(uid, "bbbbb22222")], 100)
        store.recovery_codes.spend_code(uid, rc.digest(uid, "aaaaa11111"), 150)
    with store.transaction():
        store.recovery_codes.replace_codes(uid, [rc.digest(uid, "ccccc33333")], 200)
    assert _stored(uid) == [rc.digest(uid, "ccccc33333")]
    with store.transaction():
        assert not store.recovery_codes.spend_code(uid, rc.digest(uid, "bbbbb22222"), 300)
    assert store.recovery_codes.last_used_at(uid) is None


def test_two_racing_uses_of_one_code_one_wins(app):
    """Two requests (threads, each its own session and connection) spend one code."""
    from authserver import store
    from authserver.auth import recovery_codes as rc
    from authserver.extensions import db

    uid = make_user(app)["id"]
    digest = rc.digest(uid, "abcde12345")
    with app.app_context(), store.transaction():
        store.recovery_codes.replace_codes(uid, [digest], 100)
    results: list[bool] = []
    barrier = threading.Barrier(2)

    def use() -> None:
        with app.app_context():
            barrier.wait()
            with store.transaction():
                results.append(store.recovery_codes.spend_code(uid, digest, 200))
            db.session.remove()

    threads = [threading.Thread(target=use) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == [False, True]
