"""A user's grants of one app as the account page changes them (narrowing a connected app).

- :func:`live_grants` lists the grants neither revoked nor fully expired; none: ``[]``.
- :func:`has_live_refresh_token` says whether a grant still has a refresh token that can be
  used (not rotated, revoked or expired).
- :func:`narrow_grant` replaces a grant with a narrower one. Access tokens are JWTs that are
  not stored (their claim ``gid`` names the grant), so the only way to end the outstanding
  access tokens of a grant *now* is to revoke the grant row they name: the new grant takes
  over the old one's refresh tokens (their scope narrowed with it: the next refresh carries
  only the kept scopes) and its codes (a replayed code still revokes what it issued, and a
  rotated refresh token presented again still revokes the whole chain), then the old grant
  is revoked, and with it every access token issued under it. A refresh racing the change
  fails closed: a token it rotates onto the old grant is dead with it.

Nothing here commits: the caller's unit of work changes the consent, the grants and the audit
row together.
"""

from __future__ import annotations

import secrets

from sqlalchemy import exists, select, update

from authserver.clock import now
from authserver.extensions import db
from authserver.models import AuthorizationCode, Grant, RefreshToken

__all__ = ["live_grants", "has_live_refresh_token", "narrow_grant"]


def live_grants(user_id: int, client_id: str) -> list[Grant]:
    """The user's grants of the app that are neither revoked nor fully expired, oldest
    first."""
    return list(db.session.scalars(select(Grant).where(
        Grant.user_id == user_id, Grant.client_id == client_id, Grant.revoked_at.is_(None),
        Grant.expires_at > now()).order_by(Grant.created_at)))


def has_live_refresh_token(grant_id: str) -> bool:
    """Whether some refresh token of the grant can still be exchanged."""
    rt = RefreshToken
    return bool(db.session.scalar(select(exists().where(
        rt.grant_id == grant_id, rt.rotated_at.is_(None), rt.revoked_at.is_(None),
        rt.expires_at > now()))))


def narrow_grant(grant: Grant, scope: str) -> Grant:
    """Replace ``grant`` by a copy with ``scope`` (the caller passes a narrower one): the
    copy keeps its dates, session, audience, launch context and id_token claims, takes over
    its refresh tokens (narrowed to ``scope``) and codes; ``grant`` is revoked, which ends
    its access tokens at once. Returns the copy."""
    new = Grant(id=secrets.token_hex(16), client_id=grant.client_id, user_id=grant.user_id,
                session_id=grant.session_id, scope=scope, aud=grant.aud,
                context=dict(grant.context or {}), id_token_claims=grant.id_token_claims,
                created_at=grant.created_at, last_used_at=grant.last_used_at,
                expires_at=grant.expires_at)
    db.session.add(new)
    db.session.flush()  # the refresh tokens' foreign key points at it next
    db.session.execute(update(RefreshToken).where(RefreshToken.grant_id == grant.id)
                       .values(grant_id=new.id, scope=scope))
    db.session.execute(update(AuthorizationCode).where(AuthorizationCode.grant_id == grant.id)
                       .values(grant_id=new.id))
    db.session.execute(update(Grant).where(Grant.id == grant.id, Grant.revoked_at.is_(None))
                       .values(revoked_at=now()))
    return new
