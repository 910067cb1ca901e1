"""The interaction: parked authorization requests, EHR launch contexts and consents.

- A parked request is found by its handle until it expires or is dropped; it is bound to the
  first sign-in that continues it (:func:`bind_pending`) and refused to any other.
- A launch context is found by its value (stored as SHA-256) until it expires; it is consumed
  once by a conditional UPDATE (:func:`consume_launch`): a second use loses.
- A consent is one row per user and app, replaced by each new choice; revoking it also
  revokes the app's grants for that user.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    select,
    update,
)

from authserver.clock import now
from authserver.digests import new_secret, sha256_hex
from authserver.extensions import db
from authserver.models import (
    Consent,
    LaunchContext,
    PendingAuthorization,
)
from authserver.store._db import Outcome, consume
from authserver.store.authorization import revoke_user_client_grants


def get_consent(user_id: int, client_id: str) -> Consent | None:
    """The user's live consent for the client, or None (never given or revoked)."""
    row = db.session.scalars(select(Consent).where(
        Consent.user_id == user_id, Consent.client_id == client_id)).first()
    return row if row is not None and row.revoked_at is None else None


def save_consent(user_id: int, client_id: str, scope: str, requested: str) -> Consent:
    """Record what the user granted (replacing an earlier or revoked consent)."""
    t = now()
    row = db.session.scalars(select(Consent).where(
        Consent.user_id == user_id, Consent.client_id == client_id)).first()
    if row is None:
        row = Consent(user_id=user_id, client_id=client_id, scope=scope, requested=requested,
                      created_at=t, updated_at=t)
        db.session.add(row)
    else:
        if row.revoked_at is not None:
            row.created_at = t
        row.scope, row.requested, row.updated_at, row.revoked_at = scope, requested, t, None
    return row


def change_consent(row: Consent, scope: str) -> None:
    """Replace what a live consent grants (the person narrowed it on the account page);
    what the app asked for and since when it is connected stay."""
    row.scope, row.updated_at = scope, now()


def revoke_consent(user_id: int, client_id: str) -> None:
    """End the consent and every grant of that app for that user, at once."""
    t = now()
    db.session.execute(update(Consent).where(Consent.user_id == user_id,
                                             Consent.client_id == client_id)
                       .values(revoked_at=t))
    revoke_user_client_grants(user_id, client_id)


def revoke_client_consents(client_id: str) -> int:
    """End every user's live consent for the client (not its grants: see
    :func:`authserver.store.authorization.revoke_client_grants`); returns how many."""
    return db.session.execute(update(Consent).where(
        Consent.client_id == client_id, Consent.revoked_at.is_(None))
        .values(revoked_at=now())).rowcount


def list_consents(user_id: int) -> list[Consent]:
    return list(db.session.scalars(select(Consent).where(
        Consent.user_id == user_id, Consent.revoked_at.is_(None)).order_by(Consent.updated_at)))


def park_request(client_id: str, params: dict[str, str], validated: dict[str, Any],
                 lifetime: int, note: str | None = None) -> str:
    """Keep a validated /authorize request server side (its parameters and what validation
    established); returns its (random) handle."""
    rid = new_secret(24)
    t = now()
    db.session.add(PendingAuthorization(id=rid, client_id=client_id, params=params,
                                        validated=validated, note=note, created_at=t,
                                        expires_at=t + lifetime))
    return rid


def get_pending(rid: str | None) -> PendingAuthorization | None:
    """The parked request, or None when unknown or expired."""
    if not rid or not isinstance(rid, str) or len(rid) > 64 or "\x00" in rid:
        return None  # (PostgreSQL refuses NUL in text: unknown, not a 500)
    row = db.session.get(PendingAuthorization, rid)
    return row if row is not None and row.expires_at > now() else None


def bind_pending(row: PendingAuthorization, user_id: int) -> bool:
    """Tie a parked request to the first user who continues it (a conditional UPDATE: of
    two racing sign-ins one wins); False if it is another's."""
    if row.user_id is None:
        pa = PendingAuthorization
        consume(pa, key=(pa.id == row.id,), live=(pa.user_id.is_(None),),
                values={"user_id": user_id})
        db.session.refresh(row)
    return row.user_id == user_id


def drop_pending(row: PendingAuthorization) -> None:
    db.session.delete(row)


def create_launch(lifetime: int, **fields: Any) -> str:
    """Store a launch context by the SHA-256 of its opaque value; returns the value."""
    value = new_secret(24)
    t = now()
    db.session.add(LaunchContext(launch_hash=sha256_hex(value), created_at=t,
                                 expires_at=t + lifetime, **fields))
    return value


def find_launch(value: str) -> LaunchContext | None:
    """The live (unexpired, unused) launch context, or None."""
    if not value or not isinstance(value, str) or len(value) > 128:
        return None
    row = db.session.scalars(select(LaunchContext).where(
        LaunchContext.launch_hash == sha256_hex(value))).first()
    if row is None or row.consumed_at is not None or row.expires_at <= now():
        return None
    return row


def live_launch(launch_id: int) -> LaunchContext | None:
    """The launch context by its row id while it is unexpired and unused, or None."""
    row = db.session.get(LaunchContext, launch_id)
    if row is None or row.consumed_at is not None or row.expires_at <= now():
        return None
    return row


def consume_launch(row: LaunchContext) -> bool:
    """Mark a launch context used, atomically; False if it was used meanwhile or expired."""
    t, lc = now(), LaunchContext
    return consume(lc, key=(lc.id == row.id,), live=(lc.consumed_at.is_(None),
                                                     lc.expires_at > t),
                   values={"consumed_at": t}) is Outcome.WON
