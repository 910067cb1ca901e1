"""The store: every database read and write, by aggregate (fosite's storage interfaces).

One module per aggregate, each stating its not-found, expiry and reuse semantics:

- :mod:`.authorization`: codes, grants, revocations, refresh tokens, live-grant reads;
- :mod:`.grants`: a user's grants of one app as the account page narrows them;
- :mod:`.interaction`: parked requests, launch contexts, consents;
- :mod:`.clients`: apps, registration tokens, CORS origins;
- :mod:`.accounts`: users, sign-in sessions, TOTP steps;
- :mod:`.password_resets`: forgotten-password links (SHA-256 of the token, single use);
- :mod:`.recovery_codes`: two-step recovery codes (digests, single use);
- :mod:`.jti`: client assertion ``jti`` replay cache;
- :mod:`.registry`: patients;
- :mod:`.policies`: scope ceilings per role and per user;
- :mod:`.audit`: counts of audit events;
- :mod:`.signing_keys`: signing-key rows (the private half sealed).

Two transaction rules (:mod:`._db`): ordinary verbs never commit, :func:`transaction` is
the unit of work that commits them once; single-use values (codes, refresh tokens, launch
contexts, parked requests' owners, invitations) are spent by :func:`consume`, one
conditional UPDATE committed *before* anything is issued (assertion ``jti``: a unique
INSERT), so two racing requests cannot both win, whatever the number of workers or instances
sharing the database.
"""

from __future__ import annotations

from authserver.store import (
    accounts,
    audit,
    authorization,
    clients,
    grants,
    interaction,
    jti,
    password_resets,
    policies,
    recovery_codes,
    registry,
    signing_keys,
)
from authserver.store._db import Outcome, consume, database_reachable, init_app, transaction

__all__ = ["Outcome", "accounts", "audit", "authorization", "clients", "consume",
           "database_reachable", "grants", "init_app", "interaction", "jti", "password_resets",
           "policies", "recovery_codes", "registry", "signing_keys", "transaction"]
