"""The store: every database read and write, by aggregate (fosite's storage interfaces).

One module per aggregate, each stating its not-found, expiry and reuse semantics:

- :mod:`.authorization`: codes, grants, revocations, refresh tokens, live-grant reads;
- :mod:`.interaction`: parked requests, launch contexts, consents;
- :mod:`.clients`: apps, registration tokens, CORS origins;
- :mod:`.accounts`: users, sign-in sessions, TOTP steps;
- :mod:`.jti`: client assertion ``jti`` replay cache;
- :mod:`.registry`: patients;
- :mod:`.audit`: counts of audit events.

Single-use values (codes, refresh tokens, launch contexts, assertion ``jti``) are consumed
by one conditional UPDATE (or a unique INSERT) *before* anything is issued, so two racing
requests cannot both win, whatever the number of workers or instances sharing the database.
"""

from __future__ import annotations

from authserver.store import (
    accounts,
    audit,
    authorization,
    clients,
    interaction,
    jti,
    registry,
)
from authserver.store._db import database_reachable

__all__ = ["accounts", "audit", "authorization", "clients", "database_reachable",
           "interaction", "jti", "registry"]
