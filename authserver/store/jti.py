"""Client assertion ``jti`` values (RFC 7523 §3 item 7): each accepted once per client until
it expires. :func:`claim_assertion_jti` is a unique INSERT (a replay loses, across workers);
an expired entry with the same jti is deleted and the claim retried.
"""

from __future__ import annotations

from sqlalchemy import (
    delete,
    insert,
)
from sqlalchemy.exc import IntegrityError

from authserver.clock import now
from authserver.models import (
    ClientAssertionJti,
)
from authserver.store._db import autocommit as _autocommit


def claim_assertion_jti(client_id: str, jti: str, expires_at: int) -> bool:
    """Remember an assertion ``jti`` until ``expires_at``; False while an unexpired entry
    exists (a replay). Atomic across workers and instances by the (client_id, jti) unique
    constraint; one Core INSERT on its own connection, committed before anything is issued.

    An entry that has expired (its assertion can no longer be accepted) does not block
    the same ``jti`` in a new assertion: it is deleted conditionally and the insert retried
    once, so two racing requests still cannot both win.
    """
    table = ClientAssertionJti.__table__
    row = {"client_id": client_id, "jti": jti, "expires_at": expires_at}
    with _autocommit() as conn:  # each statement commits on its own
        for attempt in range(2):
            try:
                conn.execute(insert(table).values(**row))
                return True
            except IntegrityError:
                pass
            if attempt:
                return False
            res = conn.execute(delete(table).where(
                table.c.client_id == client_id, table.c.jti == jti,
                table.c.expires_at < now()))
            if res.rowcount != 1:
                return False
    return False


def prune_assertion_jtis() -> int:
    """Delete remembered ``jti`` entries that have expired; returns how many. Housekeeping
    on its own autocommit connection: it never joins (or commits) a request's work."""
    with _autocommit() as conn:
        res = conn.execute(delete(ClientAssertionJti).where(
            ClientAssertionJti.expires_at < now()))
    return res.rowcount
