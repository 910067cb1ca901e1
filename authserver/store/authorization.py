"""Authorization artefacts: codes, grants, access-token revocations, refresh tokens, and
the live-grant reads of introspection and the account page (fosite's ``CoreStorage``).

Codes and refresh tokens are stored only as SHA-256. Single use is decided *before*
anything is issued, by one conditional UPDATE that commits on its own:

- a code: unknown, another client's or expired -> not found; redeemed before -> replayed (the
  caller revokes everything issued from it, RFC 6749 §4.1.2); a replay racing the first
  redemption marks the code :data:`CODE_REPLAYED` so that redemption issues nothing;
- a refresh token: rotated once (the old one dies with the new one's issue); a rotated token
  presented again revokes its whole grant (RFC 9700 §4.14.2 reuse detection);
- a grant is live until revoked, its user or client disabled, or (``online_access``) its
  sign-in session ended; the live reads use their own connection and see what any worker
  committed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    bindparam,
    exists,
    func,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from authserver.clock import now
from authserver.digests import sha256_hex
from authserver.extensions import db
from authserver.models import (
    AuthorizationCode,
    Client,
    Grant,
    RefreshToken,
    RevokedToken,
    User,
    UserSession,
)
from authserver.store._db import Outcome, consume


def save_code(code: str, **fields: Any) -> AuthorizationCode:
    """Store a code by its SHA-256 (never the code)."""
    row = AuthorizationCode(code_hash=sha256_hex(code), created_at=now(), **fields)
    db.session.add(row)
    return row


def consume_code(code: str, client_id: str) -> tuple[AuthorizationCode | None, bool]:
    """Redeem a code atomically. Returns (row, replayed).

    - unknown, another client's, or expired: (None, False);
    - already redeemed: (None, True) — the caller revokes what it issued;
    - else the row, now marked consumed (committed before any token is made).
    """
    h, t, ac = sha256_hex(code), now(), AuthorizationCode
    outcome = consume(ac, key=(ac.code_hash == h, ac.client_id == client_id),
                      live=(ac.consumed_at.is_(None), ac.expires_at > t),
                      values={"consumed_at": t}, spent=(ac.consumed_at.is_not(None),))
    if outcome is Outcome.WON:
        return db.session.scalars(select(ac).where(ac.code_hash == h)).first(), False
    return None, outcome is Outcome.REPLAYED


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
        ac = AuthorizationCode
        if consume(ac, key=(ac.id == row.id,), live=(ac.grant_id.is_(None),),
                   values={"grant_id": CODE_REPLAYED}) is Outcome.WON:
            return
        db.session.refresh(row)
    if row.grant_id and row.grant_id != CODE_REPLAYED:
        revoke_grant(row.grant_id)
        db.session.commit()  # a replay's verdict is final, whatever the request does next


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


def create_grant(**fields: Any) -> Grant:
    """A new grant (not committed: the caller commits with its tokens)."""
    t = now()
    row = Grant(id=secrets.token_hex(16), created_at=t, last_used_at=t, **fields)
    db.session.add(row)
    return row


def touch_grant(grant: Grant, expires_at: int) -> None:
    grant.last_used_at = now()
    grant.expires_at = max(grant.expires_at, expires_at)


def revoke_grant(grant_id: str) -> None:
    """End a grant and every token of it at once (idempotent)."""
    t = now()
    db.session.execute(update(Grant).where(Grant.id == grant_id, Grant.revoked_at.is_(None))
                       .values(revoked_at=t))
    db.session.execute(update(RefreshToken).where(RefreshToken.grant_id == grant_id,
                                                  RefreshToken.revoked_at.is_(None))
                       .values(revoked_at=t))


def revoke_user_client_grants(user_id: int, client_id: str) -> int:
    """Revoke every live grant of ``client_id`` for ``user_id``; returns how many."""
    ids = list(db.session.scalars(select(Grant.id).where(
        Grant.user_id == user_id, Grant.client_id == client_id, Grant.revoked_at.is_(None))))
    for gid in ids:
        revoke_grant(gid)
    return len(ids)


def revoke_client_grants(client_id: str) -> int:
    """Revoke every live grant of the client (all users); returns how many."""
    ids = list(db.session.scalars(select(Grant.id).where(Grant.client_id == client_id,
                                                         Grant.revoked_at.is_(None))))
    for gid in ids:
        revoke_grant(gid)
    return len(ids)


def revoke_user_grants(user_id: int) -> int:
    """Revoke every live grant of the user (all apps); returns how many."""
    ids = list(db.session.scalars(select(Grant.id).where(Grant.user_id == user_id,
                                                         Grant.revoked_at.is_(None))))
    for gid in ids:
        revoke_grant(gid)
    return len(ids)


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


def rotate_refresh_token(row: RefreshToken, client_id: str) -> RefreshToken | None:
    """Exchange a refresh token atomically (rotation); None when it cannot be used.

    - another client's, expired or revoked: None;
    - already rotated (a replay, RFC 9700 §4.14): the whole grant is revoked, None;
    - else the row, marked rotated and committed before any new token is made.
    """
    if row.client_id != client_id:
        return None
    t, rt = now(), RefreshToken
    outcome = consume(rt, key=(rt.id == row.id,),
                      live=(rt.rotated_at.is_(None), rt.revoked_at.is_(None), rt.expires_at > t),
                      values={"rotated_at": t},
                      spent=(rt.rotated_at.is_not(None), rt.revoked_at.is_(None)))
    if outcome is Outcome.WON:
        return row
    if outcome is Outcome.REPLAYED:
        revoke_grant(row.grant_id)
        db.session.commit()  # a replay's verdict is final, whatever the request does next
    return None


def revoke_refresh_token(row: RefreshToken) -> None:
    """RFC 7009 §2.1: revoking a refresh token revokes its grant's access tokens too."""
    revoke_grant(row.grant_id)


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


def _live_grant(g: Any, row: Any, t: int) -> LiveGrant | None:
    """The grant ``g`` (a Core row or a :class:`Grant`) as a :class:`LiveGrant`, or None
    when it is revoked, its client or user disabled (or deleted), or (``online_access``) its
    sign-in session ended; ``row`` carries the joined ``session_*``, ``user_disabled`` and
    ``client_disabled`` columns."""
    if g is None or g.revoked_at is not None:
        return None
    if row.client_disabled is not False or (g.user_id is not None
                                            and row.user_disabled is not False):
        return None  # disabled (or deleted) since: inactive at once
    if g.session_id is not None and (
            row.session_ended_at is not None or row.session_expires_at is None
            or row.session_expires_at <= t):
        return None  # online_access: the grant ended with its sign-in session
    return LiveGrant(g.id, g.client_id, g.user_id, g.aud, g.scope, dict(g.context or {}),
                     g.id_token_claims)


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
    grant = _live_grant(row, row, now())
    return grant is not None, grant


@dataclass(frozen=True)
class RefreshState:
    """A refresh token's row whatever its state, with its grant and user (ORM rows, for
    issuing) and whether the grant is live, from one round trip."""

    token: RefreshToken
    grant: Grant
    user: User | None
    live: LiveGrant | None  # None: revoked, user or client disabled, online session ended
    session_ended: bool  # an online_access grant whose sign-in session ended or expired
    session_expires_at: int | None


#: Built once: the refresh grant and refresh-token introspection ask this one question.
_REFRESH_STATE = (
    select(RefreshToken, Grant, User,
           UserSession.ended_at.label("session_ended_at"),
           UserSession.expires_at.label("session_expires_at"),
           User.disabled.label("user_disabled"), Client.disabled.label("client_disabled"))
    .join(Grant, Grant.id == RefreshToken.grant_id)
    .outerjoin(UserSession, UserSession.id == Grant.session_id)
    .outerjoin(User, User.id == Grant.user_id)
    .outerjoin(Client, Client.client_id == Grant.client_id)
    .where(RefreshToken.token_hash == bindparam("token_hash"))
    .execution_options(populate_existing=True))


def refresh_state(token: str | None) -> RefreshState | None:
    """The refresh token (used, expired or revoked ones too), its grant, its user and whether
    the grant is live, in one query; None when unknown or not a plausible token."""
    if not isinstance(token, str) or not token or len(token) > 512:
        return None
    row = db.session.execute(_REFRESH_STATE, {"token_hash": sha256_hex(token)}).first()
    if row is None:
        return None
    refresh, grant, user = row[0], row[1], row[2]
    t = now()
    ended = grant.session_id is not None and (
        row.session_ended_at is not None or row.session_expires_at is None
        or row.session_expires_at <= t)
    return RefreshState(refresh, grant, user, _live_grant(grant, row, t), ended,
                        row.session_expires_at)


def live_refresh_token(token: str) -> tuple[RefreshToken, LiveGrant] | None:
    """The refresh token and its grant if the token can still be used, in one round trip.

    None when unknown, expired, revoked, already rotated (used), or its grant is revoked or
    (``online_access``) its sign-in session ended.
    """
    state = refresh_state(token)
    if state is None or state.live is None:
        return None
    r = state.token
    if r.revoked_at is not None or r.rotated_at is not None or r.expires_at <= now():
        return None
    return r, state.live


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
