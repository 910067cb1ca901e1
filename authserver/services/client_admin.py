"""The operator's clients at the command line (``authserver client ...``): list and show,
disable and enable, a new secret, and deleting a client with everything it holds.

Each action returns a JSON-able dict and raises
:class:`~authserver.services.admin_console.AdminError` (one line, no secret). Each that
writes is one unit of work with its audit row (``via="cli"``).

A rotated secret: the clients table has one secret column, so during a grace period the
previous secret's SHA-256 and its end are kept in the client's metadata JSON under
:data:`~authserver.oauth.clients.PREVIOUS_SECRET` (``{"sha256": hex, "until": seconds}``),
which client authentication checks in constant time beside the current one. Only one
previous secret is kept: rotating again during a grace period ends the older one at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from authserver import audit, clock, digests, store
from authserver.oauth.clients import PREVIOUS_SECRET
from authserver.services import admin_console
from authserver.services.admin_console import AdminError
from authserver.services.user_admin import check_page
from authserver.smart.client_types import SECRET_METHODS

if TYPE_CHECKING:
    from authserver.models import Client

__all__ = ["MAX_GRACE", "list_clients", "show_client", "set_enabled", "rotate_secret",
           "delete_client"]

#: The longest grace period of a rotated secret, seconds (30 days).
MAX_GRACE = 30 * 24 * 3600


def _client(client_id: str) -> Client:
    row = store.clients.any_client(client_id)
    if row is None:
        raise AdminError(f"no client {client_id!r}")
    return row


def state(row: Any) -> str:
    """``active``, ``awaiting approval`` (disabled and never approved: a developer's
    backend service) or ``disabled``."""
    if not row.disabled:
        return "active"
    return "disabled" if row.verified else "awaiting approval"


def _row(row: Client) -> dict[str, Any]:
    return {"id": row.id, "client_id": row.client_id, "client_name": row.client_name,
            "kind": row.kind, "state": state(row),
            "token_endpoint_auth_method": row.token_endpoint_auth_method,
            "created_at": row.created_at}


def list_clients(*, kind: str | None = None, limit: int = 50, after: int | None = None
                 ) -> dict[str, Any]:
    """A page of clients by row id: ``{"clients": [...], "next": id | None}``."""
    check_page(limit, after)
    rows = store.clients.clients_page(kind=kind, after=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return {"clients": [_row(r) for r in rows], "next": rows[-1].id if more else None}


def show_client(client_id: str) -> dict[str, Any]:
    """The client's registration and permissions, never a secret nor its digest."""
    row = _client(client_id)
    meta = {k: v for k, v in (row.client_metadata or {}).items() if not k.startswith("_")}
    prev = (row.client_metadata or {}).get(PREVIOUS_SECRET)
    until = prev.get("until") if isinstance(prev, dict) else None
    return {**_row(row), "verified": bool(row.verified), "can_launch": bool(row.can_launch),
            "can_introspect": bool(row.can_introspect),
            "pre_approved": bool(row.pre_approved), "owner_id": row.owner_id,
            "has_secret": row.client_secret_hash is not None,
            "previous_secret_until": until if isinstance(until, int)
            and until > clock.now() else None,
            "metadata": meta}


@store.transaction()
def set_enabled(client_id: str, enabled: bool) -> dict[str, Any]:
    """The admin console's switch: enabling approves; disabling revokes every grant."""
    row = _client(client_id)
    admin_console.set_client_enabled(row.client_id, enabled, by=None)
    return {"client_id": row.client_id, "state": state(row)}


@store.transaction()
def rotate_secret(client_id: str, grace: int = 0) -> dict[str, Any]:
    """A new secret (shown once, stored as SHA-256). The old one keeps working for
    ``grace`` seconds (0: it stops at once)."""
    if not 0 <= grace <= MAX_GRACE:
        raise AdminError(f"--grace must be 0 to {MAX_GRACE} seconds")
    row = _client(client_id)
    if row.token_endpoint_auth_method not in SECRET_METHODS or not row.client_secret_hash:
        raise AdminError(f"client {client_id!r} has no secret (it authenticates with "
                         f"{row.token_endpoint_auth_method})")
    secret = digests.new_secret(32)
    meta = {k: v for k, v in (row.client_metadata or {}).items() if k != PREVIOUS_SECRET}
    until = clock.now() + grace if grace else None
    if until is not None:
        meta[PREVIOUS_SECRET] = {"sha256": row.client_secret_hash, "until": until}
    row.client_metadata = meta  # a new dict: the JSON column sees the change
    row.client_secret_hash = digests.sha256_hex(secret)
    audit.record("client.secret_rotated", client_id=row.client_id, grace=grace, via="cli")
    return {"client_id": row.client_id, "client_secret": secret,
            "previous_secret_until": until}


@store.transaction()
def delete_client(client_id: str) -> dict[str, Any]:
    """Revoke every grant (so every token) and consent of the client, then remove it."""
    row = _client(client_id)
    grants = store.authorization.revoke_client_grants(row.client_id)
    consents = store.interaction.revoke_client_consents(row.client_id)
    audit.record("client.deleted", client_id=row.client_id, kind=row.kind,
                 client_name=row.client_name, grants_revoked=grants, via="cli")
    store.clients.delete_client(row)
    return {"client_id": client_id, "deleted": True, "grants_revoked": grants,
            "consents_revoked": consents}
