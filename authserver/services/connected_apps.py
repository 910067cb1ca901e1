"""The apps a user authorized, in plain words, and "Revoke access" (the SMART
``management_endpoint``; ONC §170.315(g)(10)(vi): revocation at the patient's direction).

https://hl7.org/fhir/smart-app-launch/conformance.html#metadata ("management_endpoint: URL
where an end-user can view which applications currently have access to data and can make
adjustments to these access rights").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from authserver import audit, store
from authserver.i18n import gettext
from authserver.smart.consent import describe
from authserver.smart.grammar import ScopeError, parse_scope

__all__ = ["ConnectedApp", "connected_apps", "revoke_app"]

#: A client id as registration makes them (printable ASCII, no spaces), at most 64 long.
_CLIENT_ID = re.compile(r"[\x21-\x7e]{1,64}")


@dataclass(frozen=True)
class ConnectedApp:
    client_id: str
    name: str
    #: The granted scopes, each as a plain-language sentence.
    permissions: list[str] = field(default_factory=list)
    granted_at: int | None = None
    #: When a token was last issued or refreshed for it (None: never used since granted).
    last_used_at: int | None = None
    #: When its last token stops working (None: no live token).
    access_ends_at: int | None = None


def _plain_words(scope: str) -> list[str]:
    out: list[str] = []
    for token in scope.split():
        try:
            sentence = describe(parse_scope(token), gettext=gettext)
        except ScopeError:
            sentence = token
        if sentence not in out:
            out.append(sentence)
    return out


def _name(client_id: str) -> str:
    row = store.clients.find_client(client_id)
    return row.client_name if row is not None else f"{client_id} (disabled)"


def connected_apps(user_id: int) -> list[ConnectedApp]:
    """Every app with a live consent or a live grant of this user, newest first."""
    access = store.authorization.user_app_access(user_id)
    apps: list[ConnectedApp] = []
    for consent in store.interaction.list_consents(user_id):
        a = access.pop(consent.client_id, None)
        apps.append(ConnectedApp(
            consent.client_id, _name(consent.client_id), _plain_words(consent.scope),
            consent.created_at, a.last_used_at if a else None, a.expires_at if a else None))
    for a in access.values():  # tokens without a consent on record
        apps.append(ConnectedApp(a.client_id, _name(a.client_id), [], a.first_granted_at,
                                 a.last_used_at, a.expires_at))
    apps.sort(key=lambda app: -(app.granted_at or 0))
    return apps


@store.transaction()
def revoke_app(user_id: int, client_id: str) -> bool:
    """End the user's consent for the app and every token of the app for the user, at once
    and together (one unit of work: a revoked grant fails introspection on every worker).
    False if there was nothing."""
    if not isinstance(client_id, str) or not _CLIENT_ID.fullmatch(client_id):
        return False
    known = store.interaction.get_consent(user_id, client_id) is not None or \
        client_id in store.authorization.user_app_access(user_id)
    if not known:
        return False
    store.interaction.revoke_consent(user_id, client_id)
    audit.record("consent.revoked", user_id=user_id, client_id=client_id, via="account")
    return True
