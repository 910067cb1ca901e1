"""What the RFC 6749 grants share: the client authentication methods of /token, and when a
refresh token is issued.

- ``offline_access`` refresh tokens slide 90 days (ONC (g)(10)); ``online_access`` ones die
  with the user's sign-in session (SMART App Launch 2.2).
"""

from __future__ import annotations

from typing import Any

from flask import current_app

from authserver import clock, store
from authserver.smart.client_types import AuthMethod, GrantType
from authserver.smart.grammar import parse_scopes

__all__ = ["CLIENT_AUTH_METHODS", "refresh_policy"]

#: Every method, in this order (plain strings: Authlib formats the list into an error text).
CLIENT_AUTH_METHODS = [m.value for m in AuthMethod]


def refresh_policy(client: Any, scope: str, session_id: str | None) -> tuple[bool, int | None,
                                                                          str | None]:
    """(include a refresh token, its expiry, the session it is bound to)."""
    if not client.check_grant_type(GrantType.REFRESH_TOKEN):
        return False, None, None
    kinds = {s.kind for s in parse_scopes(scope)}
    if "offline_access" in kinds:
        return True, clock.now() + current_app.config["OFFLINE_REFRESH_LIFETIME"], None
    if "online_access" in kinds and session_id:
        sess = store.accounts.get_session(session_id)
        if sess is not None:
            return True, sess.expires_at, session_id
    return False, None, None
