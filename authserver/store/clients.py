"""Clients: the registered apps, their registration tokens and their CORS origins.

- :func:`find_client` (read-only snapshot, one Core SELECT: client authentication and every
  other read) answers None for an unknown id, a disabled client or input that is not a short
  NUL-free str: unknown and disabled look the same. :func:`any_client` (the ORM row, enabled
  or not) is for an administrator's changes.
- Registration tokens (RFC 7591 §3 initial access tokens) are stored by SHA-256; one is usable
  while unexpired, unrevoked and under its use count; :func:`spend_registration_token` spends
  one use by a conditional UPDATE (two racing registrations cannot both spend the last use).
- The origin index (``client_origins``) is what the token endpoint's CORS check reads: one
  indexed lookup, enabled clients only.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    bindparam,
    delete,
    insert,
    literal,
    select,
)

from authserver.clock import now
from authserver.digests import new_secret, sha256_hex
from authserver.extensions import db
from authserver.models import (
    Client,
    ClientOrigin,
    RegistrationToken,
)
from authserver.store._db import Outcome, consume
from authserver.store._db import autocommit as _autocommit

#: Built once: every token request runs it, and building a statement (and its cache key)
#: costs more than the indexed lookup itself.
_CLIENT_BY_ID = select(Client).where(Client.client_id == bindparam("client_id"))


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
        raise AttributeError("a ClientSnapshot is read-only: use store.clients.any_client")

    def __repr__(self) -> str:
        return f"<ClientSnapshot {self.client_id} {self.client_name!r}>"


def find_client(client_id: str | None) -> ClientSnapshot | None:
    """A read-only snapshot of the enabled client with this id, or None (unknown, disabled,
    or not a str), from one Core SELECT, without the
    ORM session (the client authentication of every token request). The snapshot has the
    attributes of :class:`Client` but refuses changes (use :func:`any_client` for those)."""
    if not isinstance(client_id, str) or not client_id or len(client_id) > 64 \
            or "\x00" in client_id:  # PostgreSQL refuses NUL in text: unknown, not a 500
        return None
    with _autocommit() as conn:
        row = conn.execute(_CLIENT_COLUMNS, {"client_id": client_id}).first()
    if row is None or row.disabled:
        return None
    return ClientSnapshot(row._asdict())


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
    db.session.flush()  # its id, for the audit row
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
    rt = RegistrationToken
    return consume(rt, key=(rt.id == token_id,), live=_registration_token_usable(now()),
                   values={"uses": rt.uses + 1}, commit=False) is Outcome.WON


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


def add_client(**fields: Any) -> Client:
    """Add a new client (``fields`` are its columns, its id and secret hash already set) to
    the unit of work."""
    client = Client(**fields)
    db.session.add(client)
    return client


def app_named(name: str) -> Client | None:
    """The first app (``kind`` "app", enabled or not) registered under ``name``, or None."""
    return db.session.scalars(select(Client).where(Client.client_name == name,
                                                   Client.kind == "app")).first()


def any_client(client_id: str | None) -> Client | None:
    """The client with this id, enabled or disabled (administration), or None."""
    if not isinstance(client_id, str) or not client_id or len(client_id) > 64 \
            or "\x00" in client_id:
        return None
    return db.session.scalars(_CLIENT_BY_ID, {"client_id": client_id}).first()


def list_apps(owner_id: int | None = None) -> list[Client]:
    """Apps (not resource servers), newest first; only ``owner_id``'s when given."""
    stmt = select(Client).where(Client.kind == "app").order_by(Client.created_at.desc())
    if owner_id is not None:
        stmt = stmt.where(Client.owner_id == owner_id)
    return list(db.session.scalars(stmt))


def clients_page(*, kind: str | None, after: int | None, limit: int) -> list[Client]:
    """Up to ``limit`` clients (enabled or not) by row id, those after row id ``after``
    (keyset: no OFFSET); only ``kind``'s (``app`` or ``resource_server``) when given."""
    stmt = select(Client).order_by(Client.id).limit(limit)
    if after is not None:
        stmt = stmt.where(Client.id > after)
    if kind is not None:
        stmt = stmt.where(Client.kind == kind)
    return list(db.session.scalars(stmt))


def delete_client(row: Client) -> None:
    """Remove the client row in the caller's unit of work (its CORS origins go with it,
    ON DELETE CASCADE). Grants, tokens and consents name the client by id and are not
    deleted: revoke them first (a grant whose client is gone is inactive anyway)."""
    db.session.execute(delete(ClientOrigin.__table__).where(
        ClientOrigin.__table__.c.client_id == row.client_id))
    db.session.delete(row)
