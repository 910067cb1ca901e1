"""Every database read and write the OAuth and sign-in flows need, as verbs.

Each function says what happens on not-found, expiry and reuse. Single-use values (codes,
refresh tokens, launch contexts, assertion ``jti``) are consumed by one conditional UPDATE
(or a unique INSERT) *before* anything is issued, so two racing requests cannot both win,
whatever the number of workers or instances sharing the database.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from authserver import identifiers
from authserver.extensions import db
from authserver.models import (
    AuditEvent,
    AuthorizationCode,
    Client,
    ClientAssertionJti,
    ClientOrigin,
    Consent,
    Grant,
    LaunchContext,
    Patient,
    PendingAuthorization,
    RefreshToken,
    RegistrationToken,
    RevokedToken,
    User,
    UserSession,
)

__all__ = [
    "now", "sha256_hex", "new_secret", "database_reachable",
    "get_client", "find_client", "ClientSnapshot",
    "get_user", "get_user_by_username", "get_user_by_fhir_user",
    "save_code", "consume_code", "revoke_grant_of_code", "attach_grant_to_code",
    "CODE_REPLAYED",
    "create_grant", "get_grant", "touch_grant", "revoke_grant", "revoke_user_client_grants",
    "token_is_live", "revoke_access_token",
    "save_refresh_token", "rotate_refresh_token", "find_refresh_token", "revoke_refresh_token",
    "get_consent", "save_consent", "revoke_consent", "list_consents",
    "park_request", "get_pending", "bind_pending", "drop_pending",
    "create_launch", "consume_launch",
    "remember_assertion_jti", "claim_assertion_jti", "prune_assertion_jtis",
    "start_session", "end_session", "session_is_live",
    "search_patients", "get_patient",
    "audit_mark", "count_events_since", "count_events_at_or_after",
    "accept_totp_step", "lock_totp",
    "LiveGrant", "live_access_token", "live_refresh_token", "AppAccess", "user_app_access",
    "create_registration_token", "find_registration_token", "spend_registration_token",
    "revoke_registration_token", "set_client_origins", "origin_is_registered",
    "ORIGIN_MAX_LENGTH",
]


def now() -> int:
    return int(time.time())


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def new_secret(nbytes: int = 32) -> str:
    """A fresh high-entropy value (default 256 bits), URL safe."""
    return secrets.token_urlsafe(nbytes)


def database_reachable() -> bool:
    try:
        db.session.execute(text("SELECT 1"))
        return True
    except SQLAlchemyError:
        db.session.rollback()
        return False


# ---- clients and users --------------------------------------------------------------

#: Built once: every token request runs it, and building a statement (and its cache key)
#: costs more than the indexed lookup itself.
_CLIENT_BY_ID = select(Client).where(Client.client_id == bindparam("client_id"))


def get_client(client_id: str | None) -> Client | None:
    """The enabled client with this id, or None (unknown, disabled, or not a str)."""
    if not isinstance(client_id, str) or not client_id or len(client_id) > 64 \
            or "\x00" in client_id:  # PostgreSQL refuses NUL in text: unknown, not a 500
        return None
    row = db.session.scalars(_CLIENT_BY_ID, {"client_id": client_id}).first()
    return row if row is not None and not row.disabled else None


def _autocommit() -> Connection:
    """A pooled connection in autocommit mode: one statement, one round trip (no BEGIN and
    no ROLLBACK around it on PostgreSQL)."""
    return db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")


_CLIENT_COLUMNS = select(*Client.__table__.columns).where(
    Client.__table__.c.client_id == bindparam("client_id"))


class ClientSnapshot:
    """A read-only copy of a ``clients`` row with the attributes and properties of
    :class:`Client`, outside any session. (Building an ORM ``Client`` costs about as much as
    the SELECT itself; every token request needs one.)"""

    __slots__ = tuple(c.key for c in Client.__table__.columns)
    redirect_uris = Client.redirect_uris
    grant_types = Client.grant_types
    scope = Client.scope
    is_public = Client.is_public

    def __init__(self, values: dict[str, Any]) -> None:
        for name in self.__slots__:
            object.__setattr__(self, name, values[name])

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a ClientSnapshot is read-only: use storage.get_client")

    def __repr__(self) -> str:
        return f"<ClientSnapshot {self.client_id} {self.client_name!r}>"


def find_client(client_id: str | None) -> ClientSnapshot | None:
    """A read-only snapshot of the enabled client with this id, or None (unknown, disabled,
    or not a str): the same answer as :func:`get_client` from one Core SELECT, without the
    ORM session (the client authentication of every token request). The snapshot has the
    attributes of :class:`Client` but refuses changes (use :func:`get_client` for those)."""
    if not isinstance(client_id, str) or not client_id or len(client_id) > 64 \
            or "\x00" in client_id:  # PostgreSQL refuses NUL in text: unknown, not a 500
        return None
    with _autocommit() as conn:
        row = conn.execute(_CLIENT_COLUMNS, {"client_id": client_id}).first()
    if row is None or row.disabled:
        return None
    return ClientSnapshot(row._asdict())


def get_user(user_id: int | None) -> User | None:
    if user_id is None:
        return None
    user = db.session.get(User, user_id)
    return user if user is not None and not user.disabled else None


def get_user_by_username(username: str) -> User | None:
    """The enabled user, or None: unknown and disabled users look the same to callers.
    Usernames match case-insensitively after NFKC normalisation (``User.username_key``)."""
    name = identifiers.username(username)
    if name is None:  # includes NUL, which PostgreSQL refuses in text: unknown, not a 500
        return None
    key = identifiers.username_key(name)
    user = db.session.scalars(select(User).where(User.username_key == key)).first()
    return user if user is not None and not user.disabled else None


def get_user_by_fhir_user(fhir_user: str) -> User | None:
    return db.session.scalars(select(User).where(User.fhir_user == fhir_user)).first()


# ---- authorization codes ----------------------------------------------------------

def save_code(code: str, **fields: Any) -> AuthorizationCode:
    """Store a code by its SHA-256 (never the code) and commit."""
    row = AuthorizationCode(code_hash=sha256_hex(code), created_at=now(), **fields)
    db.session.add(row)
    db.session.commit()
    return row


def consume_code(code: str, client_id: str) -> tuple[AuthorizationCode | None, bool]:
    """Redeem a code atomically. Returns (row, replayed).

    - unknown, another client's, or expired: (None, False);
    - already redeemed: (None, True) — the caller revokes what it issued;
    - else the row, now marked consumed (committed before any token is made).
    """
    h = sha256_hex(code)
    t = now()
    res = db.session.execute(
        update(AuthorizationCode)
        .where(AuthorizationCode.code_hash == h, AuthorizationCode.client_id == client_id,
               AuthorizationCode.consumed_at.is_(None), AuthorizationCode.expires_at > t)
        .values(consumed_at=t)
    )
    db.session.commit()
    row = db.session.scalars(
        select(AuthorizationCode).where(AuthorizationCode.code_hash == h)).first()
    if res.rowcount == 1:
        return row, False
    replayed = row is not None and row.client_id == client_id and row.consumed_at is not None
    return None, replayed


#: Written into ``AuthorizationCode.grant_id`` by a replay that arrives while the first
#: redemption is still issuing: that redemption then issues nothing (see
#: :func:`attach_grant_to_code`).
CODE_REPLAYED = "replayed"


def revoke_grant_of_code(code: str) -> None:
    """RFC 6749 §4.1.2: a code used twice revokes every token issued from it.

    When the first redemption has not yet recorded its grant (two racing requests), the
    code is marked :data:`CODE_REPLAYED` instead, so that redemption issues nothing.
    """
    row = db.session.scalars(
        select(AuthorizationCode).where(AuthorizationCode.code_hash == sha256_hex(code))).first()
    if row is None:
        return
    if row.grant_id is None:
        res = db.session.execute(
            update(AuthorizationCode)
            .where(AuthorizationCode.id == row.id, AuthorizationCode.grant_id.is_(None))
            .values(grant_id=CODE_REPLAYED))
        db.session.commit()
        if res.rowcount == 1:
            return
        db.session.refresh(row)
    if row.grant_id and row.grant_id != CODE_REPLAYED:
        revoke_grant(row.grant_id)


def attach_grant_to_code(code_id: int, grant_id: str) -> bool:
    """Record the grant a redeemed code issued, in the caller's transaction (no commit).

    False when a replay marked the code meanwhile: the caller rolls back and issues nothing.
    A conditional UPDATE, so it and :func:`revoke_grant_of_code` cannot both miss.
    """
    res = db.session.execute(
        update(AuthorizationCode)
        .where(AuthorizationCode.id == code_id, AuthorizationCode.grant_id.is_(None))
        .values(grant_id=grant_id))
    return res.rowcount == 1


# ---- grants, access tokens, refresh tokens -----------------------------------------

def create_grant(**fields: Any) -> Grant:
    """A new grant (not committed: the caller commits with its tokens)."""
    t = now()
    row = Grant(id=secrets.token_hex(16), created_at=t, last_used_at=t, **fields)
    db.session.add(row)
    return row


def get_grant(grant_id: str) -> Grant | None:
    return db.session.get(Grant, grant_id)


def touch_grant(grant: Grant, expires_at: int) -> None:
    grant.last_used_at = now()
    grant.expires_at = max(grant.expires_at, expires_at)


def revoke_grant(grant_id: str) -> None:
    """End a grant and every token of it at once (idempotent); commits."""
    t = now()
    db.session.execute(update(Grant).where(Grant.id == grant_id, Grant.revoked_at.is_(None))
                       .values(revoked_at=t))
    db.session.execute(update(RefreshToken).where(RefreshToken.grant_id == grant_id,
                                                  RefreshToken.revoked_at.is_(None))
                       .values(revoked_at=t))
    db.session.commit()


def revoke_user_client_grants(user_id: int, client_id: str) -> int:
    """Revoke every live grant of ``client_id`` for ``user_id``; returns how many."""
    ids = list(db.session.scalars(select(Grant.id).where(
        Grant.user_id == user_id, Grant.client_id == client_id, Grant.revoked_at.is_(None))))
    for gid in ids:
        revoke_grant(gid)
    return len(ids)


def token_is_live(jti: str, grant_id: str | None) -> bool:
    """One indexed round trip: is this (signature-checked, unexpired) access token still live?

    False when its ``jti`` was revoked, its grant revoked, or its online session ended.
    """
    revoked = exists().where(RevokedToken.jti == jti)
    if grant_id is None:
        return not db.session.scalar(select(revoked))
    row = db.session.execute(
        select(Grant.revoked_at, Grant.session_id, revoked.label("jti_revoked"))
        .where(Grant.id == grant_id)
    ).first()
    if row is None or row.revoked_at is not None or row.jti_revoked:
        return False
    return row.session_id is None or session_is_live(row.session_id)


def revoke_access_token(jti: str, expires_at: int) -> None:
    """Remember a revoked access token until it would have expired anyway (idempotent)."""
    if db.session.get(RevokedToken, jti) is None:
        db.session.add(RevokedToken(jti=jti, revoked_at=now(), expires_at=expires_at))
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()


def save_refresh_token(token: str, grant: Grant, scope: str, expires_at: int) -> RefreshToken:
    """Store a refresh token by its SHA-256 (not committed)."""
    row = RefreshToken(token_hash=sha256_hex(token), grant_id=grant.id,
                       client_id=grant.client_id, scope=scope, issued_at=now(),
                       expires_at=expires_at)
    db.session.add(row)
    return row


def find_refresh_token(token: str) -> RefreshToken | None:
    if not isinstance(token, str) or not token or len(token) > 512:
        return None
    return db.session.scalars(
        select(RefreshToken).where(RefreshToken.token_hash == sha256_hex(token))).first()


def rotate_refresh_token(token: str, client_id: str) -> RefreshToken | None:
    """Exchange a refresh token atomically (rotation); None when it cannot be used.

    - unknown, another client's, expired or revoked: None;
    - already rotated (a replay, RFC 9700 §4.14): the whole grant is revoked, None;
    - else the row, marked rotated and committed before any new token is made.
    """
    row = find_refresh_token(token)
    if row is None or row.client_id != client_id:
        return None
    t = now()
    res = db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == row.id, RefreshToken.rotated_at.is_(None),
               RefreshToken.revoked_at.is_(None), RefreshToken.expires_at > t)
        .values(rotated_at=t)
    )
    db.session.commit()
    if res.rowcount == 1:
        db.session.refresh(row)
        return row
    db.session.refresh(row)
    if row.rotated_at is not None and row.revoked_at is None:
        revoke_grant(row.grant_id)
    return None


def revoke_refresh_token(row: RefreshToken) -> None:
    """RFC 7009 §2.1: revoking a refresh token revokes its grant's access tokens too."""
    revoke_grant(row.grant_id)


# ---- consents -------------------------------------------------------------------------

def get_consent(user_id: int, client_id: str) -> Consent | None:
    """The user's live consent for the client, or None (never given or revoked)."""
    row = db.session.scalars(select(Consent).where(
        Consent.user_id == user_id, Consent.client_id == client_id)).first()
    return row if row is not None and row.revoked_at is None else None


def save_consent(user_id: int, client_id: str, scope: str, requested: str) -> Consent:
    """Record what the user granted (replacing an earlier or revoked consent); commits."""
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
    db.session.commit()
    return row


def revoke_consent(user_id: int, client_id: str) -> None:
    """End the consent and every grant of that app for that user, at once; commits."""
    t = now()
    db.session.execute(update(Consent).where(Consent.user_id == user_id,
                                             Consent.client_id == client_id)
                       .values(revoked_at=t))
    db.session.commit()
    revoke_user_client_grants(user_id, client_id)


def list_consents(user_id: int) -> list[Consent]:
    return list(db.session.scalars(select(Consent).where(
        Consent.user_id == user_id, Consent.revoked_at.is_(None)).order_by(Consent.updated_at)))


# ---- parked authorization requests -----------------------------------------------

def park_request(client_id: str, params: dict[str, str], lifetime: int,
                 note: str | None = None) -> str:
    """Keep a validated /authorize request server side; returns its (random) handle."""
    rid = new_secret(24)
    t = now()
    db.session.add(PendingAuthorization(id=rid, client_id=client_id, params=params,
                                        note=note, created_at=t, expires_at=t + lifetime))
    db.session.commit()
    return rid


def get_pending(rid: str | None) -> PendingAuthorization | None:
    """The parked request, or None when unknown or expired."""
    if not rid or not isinstance(rid, str) or len(rid) > 64 or "\x00" in rid:
        return None  # (PostgreSQL refuses NUL in text: unknown, not a 500)
    row = db.session.get(PendingAuthorization, rid)
    return row if row is not None and row.expires_at > now() else None


def bind_pending(row: PendingAuthorization, user_id: int) -> bool:
    """Tie a parked request to the first user who continues it; False if it is another's."""
    if row.user_id is None:
        row.user_id = user_id
        db.session.commit()
    return row.user_id == user_id


def drop_pending(row: PendingAuthorization) -> None:
    db.session.delete(row)
    db.session.commit()


# ---- EHR launch contexts --------------------------------------------------------------

def create_launch(lifetime: int, **fields: Any) -> str:
    """Store a launch context by the SHA-256 of its opaque value; returns the value."""
    value = new_secret(24)
    t = now()
    db.session.add(LaunchContext(launch_hash=sha256_hex(value), created_at=t,
                                 expires_at=t + lifetime, **fields))
    db.session.commit()
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


def consume_launch(row: LaunchContext) -> bool:
    """Mark a launch context used, atomically; False if it was used meanwhile or expired."""
    t = now()
    res = db.session.execute(update(LaunchContext).where(
        LaunchContext.id == row.id, LaunchContext.consumed_at.is_(None),
        LaunchContext.expires_at > t).values(consumed_at=t))
    db.session.commit()
    return res.rowcount == 1


# ---- client assertion jti replay cache ---------------------------------------------

def remember_assertion_jti(client_id: str, jti: str, expires_at: int) -> bool:
    """Record an assertion ``jti``; False if it was seen before (a replay).

    The (client_id, jti) unique constraint makes this atomic across workers and instances.
    Expired entries are pruned opportunistically.
    """
    db.session.add(ClientAssertionJti(client_id=client_id, jti=jti, expires_at=expires_at))
    try:
        db.session.commit()
        return True
    except IntegrityError:
        db.session.rollback()
        return False


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
    """Delete remembered ``jti`` entries that have expired; returns how many. Commits."""
    res = db.session.execute(delete(ClientAssertionJti).where(
        ClientAssertionJti.expires_at < now()))
    db.session.commit()
    return res.rowcount


# ---- sign-in sessions ------------------------------------------------------------------

def start_session(user: User, lifetime: int) -> UserSession:
    t = now()
    row = UserSession(id=new_secret(24), user_id=user.id, auth_time=t, expires_at=t + lifetime)
    db.session.add(row)
    db.session.commit()
    return row


def end_session(session_id: str | None) -> None:
    if not session_id:
        return
    db.session.execute(update(UserSession).where(UserSession.id == session_id,
                                                 UserSession.ended_at.is_(None))
                       .values(ended_at=now()))
    db.session.commit()


def get_session(session_id: str | None) -> UserSession | None:
    if not session_id or not isinstance(session_id, str):
        return None
    row = db.session.get(UserSession, session_id)
    if row is None or row.ended_at is not None or row.expires_at <= now():
        return None
    return row


def session_is_live(session_id: str) -> bool:
    return get_session(session_id) is not None


# ---- patient registry ---------------------------------------------------------------

def get_patient(patient_id: str) -> Patient | None:
    if not isinstance(patient_id, str) or not patient_id or len(patient_id) > 64 \
            or "\x00" in patient_id:  # PostgreSQL refuses NUL in text: unknown, not a 500
        return None
    return db.session.get(Patient, patient_id)


def search_patients(query: str = "", birth_date: str = "", limit: int = 50) -> list[Patient]:
    stmt = select(Patient)
    # PostgreSQL refuses NUL in text: drop it from a search rather than answer 500.
    query, birth_date = (query or "").replace("\x00", ""), (birth_date or "").replace("\x00", "")
    q = query.strip()
    if q:
        like = f"%{q.lower()}%"
        from sqlalchemy import func, or_

        stmt = stmt.where(or_(func.lower(Patient.family).like(like),
                              func.lower(Patient.given).like(like), Patient.id == q))
    if birth_date:
        stmt = stmt.where(Patient.birth_date == birth_date.strip())
    return list(db.session.scalars(stmt.order_by(Patient.family, Patient.given).limit(limit)))


# ---- counting recent audit events (TOTP failures of one sign-in) -----------------------

def audit_mark() -> int:
    """The id of the newest audit row (0 when none): later rows have larger ids."""
    return int(db.session.scalar(select(func.max(AuditEvent.id))) or 0)


def count_events_since(event: str, user_id: int, mark: int) -> int:
    """How many ``event`` rows for ``user_id`` were written after :func:`audit_mark` gave
    ``mark``. Kept in the database, so replaying an old cookie cannot reset the count."""
    return int(db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.id > mark, AuditEvent.event == event, AuditEvent.user_id == user_id)) or 0)


def count_events_at_or_after(event: str, user_id: int, at: int) -> int:
    """How many ``event`` rows for ``user_id`` carry a time ``at`` or later (the TOTP
    failures of one account within the lockout window, across sign-ins and workers)."""
    return int(db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.user_id == user_id, AuditEvent.event == event, AuditEvent.at >= at)) or 0)


# ---- the TOTP step of one account ---------------------------------------------------------

def _totp_open(t: int) -> Any:
    return User.totp_locked_until.is_(None) | (User.totp_locked_until <= t)


def accept_totp_step(user_id: int, step: int, t: int) -> bool:
    """Remember ``step`` as the user's last accepted TOTP time-step and end the run of
    lockouts (the next one is the first again; the end of the last one stays, as the point
    before which wrong codes no longer count). False (nothing changed) when that step or a
    later one was already accepted (a replay, or two racing submissions of one code: only
    one wins) or when the step is locked at ``t`` (a lockout that landed after the caller
    looked)."""
    res = db.session.execute(
        update(User)
        .where(User.id == user_id, _totp_open(t),
               User.totp_last_step.is_(None) | (User.totp_last_step < step))
        .values(totp_last_step=step, totp_lockouts=0)
        .execution_options(synchronize_session=False))
    return res.rowcount == 1


def lock_totp(user_id: int, lockouts: int, until: int, t: int) -> bool:
    """Lock the user's TOTP step until ``until`` and count the lockout, if at ``t`` it is
    open and ``lockouts`` lockouts were counted so far; False when another request locked it
    first (so two racing failures lock once, with one audit row)."""
    res = db.session.execute(
        update(User)
        .where(User.id == user_id, _totp_open(t),
               func.coalesce(User.totp_lockouts, 0) == lockouts)
        .values(totp_locked_until=until, totp_lockouts=lockouts + 1)
        .execution_options(synchronize_session=False))
    return res.rowcount == 1


# ---- token lifecycle: introspection and connected apps -------------------------------

@dataclass(frozen=True)
class LiveGrant:
    """What introspection needs of a live grant (columns, never a stale ORM object)."""

    id: str
    client_id: str
    user_id: int | None
    aud: str
    scope: str
    context: dict[str, Any]
    id_token_claims: dict[str, Any] | None


_LIVE_GRANT_COLUMNS = (Grant.id, Grant.client_id, Grant.user_id, Grant.aud, Grant.scope,
                       Grant.context, Grant.id_token_claims, Grant.revoked_at,
                       Grant.session_id, UserSession.ended_at.label("session_ended_at"),
                       UserSession.expires_at.label("session_expires_at"),
                       User.disabled.label("user_disabled"),
                       Client.disabled.label("client_disabled"))
_G, _S, _R = Grant.__table__.c, UserSession.__table__.c, RevokedToken.__table__.c
_U, _C = User.__table__.c, Client.__table__.c
#: Built once: the introspection hot path pays for no statement construction or ORM.
#: A disabled user or client makes the grant's tokens inactive at once (no cache).
_LIVE_ACCESS_TOKEN = (
    select(_G.id, _G.client_id, _G.user_id, _G.aud, _G.scope, _G.context,
           _G.id_token_claims, _G.revoked_at, _G.session_id,
           _S.ended_at.label("session_ended_at"), _S.expires_at.label("session_expires_at"),
           _U.disabled.label("user_disabled"), _C.disabled.label("client_disabled"),
           exists().where(_R.jti == bindparam("jti")).label("jti_revoked"))
    .select_from(Grant.__table__
                 .outerjoin(UserSession.__table__, _S.id == _G.session_id)
                 .outerjoin(User.__table__, _U.id == _G.user_id)
                 .outerjoin(Client.__table__, _C.client_id == _G.client_id))
    .where(_G.id == bindparam("gid")))
#: A token without a grant (client_credentials): its jti not revoked, its client enabled.
_GRANTLESS_LIVE = select(
    exists().where(_R.jti == bindparam("jti")).label("jti_revoked"),
    exists().where(_C.client_id == bindparam("cid"), _C.disabled.is_(False))
    .label("client_enabled"))


def _live_grant(row: Any, t: int) -> LiveGrant | None:
    if row is None or row.revoked_at is not None:
        return None
    if row.client_disabled is not False or (row.user_id is not None
                                             and row.user_disabled is not False):
        return None  # disabled (or deleted) since: inactive at once
    if row.session_id is not None and (
            row.session_ended_at is not None or row.session_expires_at is None
            or row.session_expires_at <= t):
        return None  # online_access: the grant ended with its sign-in session
    return LiveGrant(row.id, row.client_id, row.user_id, row.aud, row.scope,
                     dict(row.context or {}), row.id_token_claims)


def live_access_token(jti: str, grant_id: str | None, client_id: str | None = None
                      ) -> tuple[bool, LiveGrant | None]:
    """One indexed round trip for a signature-checked, unexpired access token:
    ``(live, grant)``.

    - its ``jti`` revoked (RFC 7009), its grant unknown or revoked, its user or client
      disabled, or the sign-in session of an ``online_access`` grant ended or expired:
      ``(False, None)``;
    - no grant id (client_credentials): ``(not revoked and client_id enabled, None)``;
    - else ``(True, grant)`` with the grant's launch context and id_token claims.

    Reads committed rows through its own connection (never the ORM session), so a
    revocation committed by any worker or instance is seen at once.
    """
    with db.engine.connect() as conn:
        if grant_id is None:
            row = conn.execute(_GRANTLESS_LIVE, {"jti": jti, "cid": client_id}).first()
            return (not row.jti_revoked and bool(row.client_enabled), None)
        row = conn.execute(_LIVE_ACCESS_TOKEN, {"jti": jti, "gid": grant_id}).first()
    if row is None or row.jti_revoked:
        return False, None
    grant = _live_grant(row, now())
    return grant is not None, grant


def live_refresh_token(token: str) -> tuple[RefreshToken, LiveGrant] | None:
    """The refresh token and its grant if the token can still be used, in one round trip.

    None when unknown, expired, revoked, already rotated (used), or its grant is revoked or
    (``online_access``) its sign-in session ended.
    """
    if not isinstance(token, str) or not token or len(token) > 512:
        return None
    t = now()
    row = db.session.execute(
        select(RefreshToken, *_LIVE_GRANT_COLUMNS)
        .join(Grant, Grant.id == RefreshToken.grant_id)
        .outerjoin(UserSession, UserSession.id == Grant.session_id)
        .outerjoin(User, User.id == Grant.user_id)
        .outerjoin(Client, Client.client_id == Grant.client_id)
        .where(RefreshToken.token_hash == sha256_hex(token))
        .execution_options(populate_existing=True)
    ).first()
    if row is None:
        return None
    refresh: RefreshToken = row[0]
    if (refresh.revoked_at is not None or refresh.rotated_at is not None
            or refresh.expires_at <= t):
        return None
    grant = _live_grant(row, t)
    return (refresh, grant) if grant is not None else None


@dataclass(frozen=True)
class AppAccess:
    """A user's live grants of one app, summed up for the account page."""

    client_id: str
    first_granted_at: int
    last_used_at: int
    expires_at: int


def user_app_access(user_id: int) -> dict[str, AppAccess]:
    """Per app (client_id): when its live grants for ``user_id`` began, were last used
    (a token issued or refreshed) and when the last of their tokens stops working.
    Revoked and fully expired grants are left out; an app with none is absent."""
    rows = db.session.execute(
        select(Grant.client_id, func.min(Grant.created_at), func.max(Grant.last_used_at),
               func.max(Grant.expires_at))
        .where(Grant.user_id == user_id, Grant.revoked_at.is_(None), Grant.expires_at > now())
        .group_by(Grant.client_id))
    return {cid: AppAccess(cid, int(first), int(last), int(exp))
            for cid, first, last, exp in rows}



# ---- issue 11: initial access tokens (RFC 7591 §3) and client origins (CORS) ---------
#
# Kept apart from the verbs above: registration bounds and the CORS origin index.

#: The ``client_origins.origin`` column's length.
ORIGIN_MAX_LENGTH = 255

def create_registration_token(*, lifetime: int, max_uses: int,
                              note: str | None) -> tuple[str, RegistrationToken]:
    """Issue an initial access token; returns (token, row). Stored by its SHA-256 only;
    the token is shown once. Not committed (the caller commits with its audit row)."""
    token = new_secret(32)
    t = now()
    row = RegistrationToken(token_hash=sha256_hex(token), created_at=t, expires_at=t + lifetime,
                            max_uses=max_uses, uses=0, note=note)
    db.session.add(row)
    return token, row


def _registration_token_usable(t: int) -> tuple[Any, ...]:
    rt = RegistrationToken
    return (rt.revoked_at.is_(None), rt.expires_at > t, rt.uses < rt.max_uses)


def find_registration_token(token: str | None) -> RegistrationToken | None:
    """The initial access token if it can still register a client, else None (unknown,
    expired, revoked or every use spent). A read: it spends nothing."""
    if not isinstance(token, str) or not token or len(token) > 512:
        return None
    return db.session.scalars(select(RegistrationToken).where(
        RegistrationToken.token_hash == sha256_hex(token),
        *_registration_token_usable(now()))).first()


def spend_registration_token(token_id: int) -> bool:
    """Count one use of an initial access token by a conditional UPDATE in the caller's
    transaction (no commit): True when a use was left, False when it expired, was revoked
    or spent meanwhile. Two racing registrations cannot both take the last use: the second
    UPDATE waits for the first one's row lock (PostgreSQL) or the write lock (SQLite) and
    then finds ``uses < max_uses`` false. A rollback gives the use back."""
    res = db.session.execute(
        update(RegistrationToken)
        .where(RegistrationToken.id == token_id, *_registration_token_usable(now()))
        .values(uses=RegistrationToken.uses + 1))
    return res.rowcount == 1


def revoke_registration_token(token_id: int) -> bool:
    """Revoke an initial access token (idempotent); False when there is no such token.
    Not committed."""
    row = db.session.get(RegistrationToken, token_id)
    if row is None:
        return False
    if row.revoked_at is None:
        row.revoked_at = now()
    return True


def set_client_origins(client_id: str, origins: set[str] | frozenset[str]) -> None:
    """Make ``client_origins`` hold exactly these web origins for the client (the origins
    of its redirect URIs), replacing what was there. Not committed: call it in the
    transaction that sets the redirect URIs. Rows go with the client (FK ON DELETE CASCADE).
    """
    table = ClientOrigin.__table__
    db.session.flush()  # the client row first: client_origins references it
    db.session.execute(delete(table).where(table.c.client_id == client_id))
    if origins:
        db.session.execute(insert(table), [{"origin": o, "client_id": client_id}
                                           for o in sorted(origins)])


_ORIGIN_OF_ENABLED_CLIENT = (
    select(literal(1))
    .select_from(ClientOrigin.__table__.join(
        Client.__table__, Client.__table__.c.client_id == ClientOrigin.__table__.c.client_id))
    .where(ClientOrigin.__table__.c.origin == bindparam("origin"),
           Client.__table__.c.disabled.is_(False))
    .limit(1))


def origin_is_registered(origin: str) -> bool:
    """Is ``origin`` the origin of a redirect URI of some enabled client? One indexed
    lookup (the primary key of ``client_origins`` leads with ``origin``), whatever the
    number of clients; reads committed rows on its own connection."""
    if not isinstance(origin, str) or not origin or len(origin) > ORIGIN_MAX_LENGTH \
            or "\x00" in origin:  # PostgreSQL refuses NUL in text: unknown, not a 500
        return False
    with _autocommit() as conn:
        return conn.execute(_ORIGIN_OF_ENABLED_CLIENT, {"origin": origin}).first() is not None

