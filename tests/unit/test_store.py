"""The store's two transaction rules (authserver/store/_db.py), on the suite's database.

1. Ordinary verbs never commit; ``store.transaction()`` is the unit of work: it commits once
   when the block ends, rolls back when it raises, and nested blocks join the outermost.
2. ``store.consume()`` spends a single-use row by one conditional UPDATE and answers won,
   replayed or gone.
And the guard: a request that leaves writes uncommitted is recorded (the suite fails on it).
"""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import select

from tests.helpers import make_launch, make_user


def _usernames(app) -> set[str]:
    from authserver.extensions import db
    from authserver.models import User

    with app.app_context():
        db.session.remove()
        return set(db.session.scalars(select(User.username)))


def test_transaction_commits_the_block_once_and_nested_blocks_join_it(ctx):
    from authserver import audit, store
    from authserver.extensions import db
    from authserver.models import AuditEvent

    commits: list[int] = []
    from sqlalchemy import event

    def count(_session):
        commits.append(1)

    event.listen(db.session, "after_commit", count)
    try:
        with store.transaction():
            audit.record("test.outer")
            with store.transaction():
                audit.record("test.inner")
            assert commits == []  # the inner block did not commit
        assert commits == [1]
    finally:
        event.remove(db.session, "after_commit", count)
    db.session.remove()
    events = set(db.session.scalars(select(AuditEvent.event)))
    assert {"test.outer", "test.inner"} <= events


def test_transaction_that_raises_keeps_nothing_of_the_block(app):
    from authserver import store
    from authserver.services import accounts

    with app.app_context(), pytest.raises(RuntimeError):
        with store.transaction():
            accounts.create_user("kept-not", "patient", password=None, fhir_user=None)
            raise RuntimeError("the operation failed half way")
    assert "kept-not" not in _usernames(app)


def test_create_user_alone_is_its_own_unit_of_work(app):
    make_user(app, "solo", fhir_user="Patient/p2")
    assert "solo" in _usernames(app)


def test_consume_answers_won_then_replayed_and_gone_for_what_never_was(ctx):
    from authserver import clock, store
    from authserver.models import LaunchContext as lc

    made = make_launch(ctx)
    row = store.interaction.find_launch(made["launch"])
    t = clock.now()

    def spend(launch_id: int) -> store.Outcome:
        return store.consume(lc, key=(lc.id == launch_id,),
                             live=(lc.consumed_at.is_(None), lc.expires_at > t),
                             values={"consumed_at": t}, spent=(lc.consumed_at.is_not(None),))

    assert spend(row.id) is store.Outcome.WON
    assert spend(row.id) is store.Outcome.REPLAYED
    assert spend(10 ** 9) is store.Outcome.GONE
    assert store.interaction.find_launch(made["launch"]) is None  # spent, and committed


def test_a_request_that_leaves_writes_uncommitted_is_caught(app, base_url):
    from authserver.extensions import db
    from authserver.models import AuditEvent

    def leaky():  # a view that forgets the unit of work
        db.session.add(AuditEvent(at=0, event="test.leaked", detail={}))
        return "ok"

    app.add_url_rule("/__leaky", view_func=leaky)
    assert requests.get(base_url + "/__leaky").status_code == 200
    caught = list(app.extensions["store.uncommitted"])
    app.extensions["store.uncommitted"].clear()  # else the live fixture fails this test
    assert caught == ["GET /__leaky ['AuditEvent']"]
    with app.app_context():
        assert db.session.scalars(select(AuditEvent).where(
            AuditEvent.event == "test.leaked")).first() is None  # dropped, as logged
