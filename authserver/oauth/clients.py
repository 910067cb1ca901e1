"""The client as Authlib sees it (``ClientMixin``), over a :class:`Client` row."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import ClientMixin

from authserver import clock, digests
from authserver.smart.client_types import GrantType
from authserver.smart.grammar import ScopeError, format_scopes, narrow, parse_scopes
from authserver.urls import is_loopback_host, origin_of

if TYPE_CHECKING:
    from authserver.models import Client

__all__ = ["OAuthClient", "PREVIOUS_SECRET"]


#: The key in a client's metadata JSON that holds its previous secret after
#: ``authserver client rotate-secret --grace N``: ``{"sha256": hex, "until": unix seconds}``.
#: (The clients table has one secret column; no migration was added for a second one.)
#: Never part of any response: :func:`authserver.services.registration.client_response`
#: leaves out every key beginning with ``_``.
PREVIOUS_SECRET = "_previous_secret"


def _previous_secret_hash(meta: object) -> str | None:
    """The previous secret's SHA-256 (hex) while its grace period lasts, else None."""
    prev = meta.get(PREVIOUS_SECRET) if isinstance(meta, dict) else None
    if not isinstance(prev, dict):
        return None
    digest, until = prev.get("sha256"), prev.get("until")
    if not isinstance(digest, str) or len(digest) != 64 or not digest.isascii() \
            or not isinstance(until, int) or clock.now() >= until:
        return None
    return digest


class OAuthClient(ClientMixin):
    def __init__(self, row: Client) -> None:
        self.row = row
        self.client_id = row.client_id

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> None:
        # SMART: redirect_uri is REQUIRED on every authorization request; no default.
        return None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """The requested scopes narrowed to the registration; None when malformed or empty
        (Authlib then answers ``invalid_scope``)."""
        if not scope:
            return None
        try:
            kept = narrow(parse_scopes(scope), parse_scopes(self.row.scope))
        except ScopeError:
            return None
        return format_scopes(kept) or None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # RFC 9700 §2.1: exact string matching, except the port of a loopback redirect
        # (RFC 8252 §7.3), which native apps pick at run time.
        if not isinstance(redirect_uri, str):
            return False
        registered = self.row.redirect_uris
        # compare_digest takes only ASCII str: compare bytes (no 500 on non-ASCII input).
        asked_bytes = redirect_uri.encode("utf-8", "surrogatepass")
        if any(hmac.compare_digest(asked_bytes, r.encode("utf-8", "surrogatepass"))
               for r in registered):
            return True
        try:
            asked = urlsplit(redirect_uri)
        except ValueError:
            return False
        if asked.scheme != "http" or not is_loopback_host(asked.hostname):
            return False
        for r in registered:
            reg = urlsplit(r)
            if (reg.scheme, reg.hostname, reg.path, reg.query) == (
                    asked.scheme, asked.hostname, asked.path, asked.query) and reg.port is None:
                return True
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        """The current secret, or the one before it while its grace period lasts (see
        :data:`PREVIOUS_SECRET`); SHA-256 digests compared in constant time, both always."""
        stored = self.row.client_secret_hash
        if not stored or not isinstance(client_secret, str) or len(client_secret) > 512:
            return False
        given = digests.sha256_hex(client_secret)
        current = hmac.compare_digest(given, stored)
        previous = _previous_secret_hash(self.row.client_metadata)
        earlier = hmac.compare_digest(given, previous or stored)
        return current or (previous is not None and earlier)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        # One registered method for every endpoint (token, introspection, revocation).
        return method == self.row.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and GrantType.AUTHORIZATION_CODE in self.row.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.row.grant_types

    @property
    def origins(self) -> set[str]:
        return {o for o in (origin_of(u) for u in self.row.redirect_uris) if o}
