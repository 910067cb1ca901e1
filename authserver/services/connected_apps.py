"""The apps a user authorized, in plain words; "Change" (untick what an app may see) and
"Revoke access" (the SMART ``management_endpoint``; ONC §170.315(g)(10)(vi): revocation at
the patient's direction).

https://hl7.org/fhir/smart-app-launch/conformance.html#metadata ("management_endpoint: URL
where an end-user can view which applications currently have access to data and can make
adjustments to these access rights").

Changing an app can only take scopes away (only the app can ask for more, on the consent
page). It narrows the remembered consent and every live grant of the app for the user: the
refresh tokens are narrowed (the next refreshed token carries only the kept scopes) and
every access token already issued under those grants ends at once (``store.grants``).
Unticking everything revokes the app.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from authserver import audit, store
from authserver.i18n import gettext
from authserver.services import notices
from authserver.smart.consent import (
    ConsentItem,
    consent_items,
    describe,
    granted_from_choice,
    previously_chosen,
)
from authserver.smart.grammar import Scope, ScopeError, format_scopes, narrow, parse_scope
from authserver.smart.wording import N_

if TYPE_CHECKING:
    from authserver.models import Grant

__all__ = ["Change", "ChangeForm", "ConnectedApp", "change_app", "change_form",
           "connected_app", "connected_apps", "revoke_app"]

#: A client id as registration makes them (printable ASCII, no spaces), at most 64 long.
_CLIENT_ID = re.compile(r"[\x21-\x7e]{1,64}")
#: Scopes that carry the launch's context, not data: kept while anything else is, never
#: offered for unticking (the consent page grants them with their launch too).
_CONTEXT_KINDS = frozenset({"launch", "launch_context"})
#: Without one of these a grant has no refresh token to narrow: it is revoked instead.
_STAY_CONNECTED = frozenset({"offline_access", "online_access"})
#: Registered links shown with an app (RFC 7591 §2), in this order, https only.
_LINKS = (("client_uri", N_("Homepage")), ("policy_uri", N_("Privacy policy")),
          ("tos_uri", N_("Terms of service")))


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
    #: (label, https URL) of its registered homepage, privacy policy and terms.
    links: list[tuple[str, str]] = field(default_factory=list)
    #: A consent is on record, so what it may see can be narrowed on the "Change" page.
    changeable: bool = False


def _scopes(scope: str) -> list[Scope]:
    """The scopes of a stored scope string; a token that no longer parses is skipped."""
    out: list[Scope] = []
    for token in dict.fromkeys(scope.split()):
        try:
            out.append(parse_scope(token))
        except ScopeError:
            continue
    return out


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


def _https_links(meta: dict[str, Any]) -> list[tuple[str, str]]:
    links = []
    for key, label in _LINKS:
        url = meta.get(key)
        if isinstance(url, str) and len(url) <= 2048:
            parts = urlsplit(url)
            if parts.scheme == "https" and parts.hostname:
                links.append((gettext(label), url))
    return links


def _app(client_id: str, scope: str, granted_at: int | None, access: Any,
         changeable: bool) -> ConnectedApp:
    row = store.clients.find_client(client_id)
    name = row.client_name if row is not None else gettext("%(app)s (disabled)", app=client_id)
    links = _https_links(row.client_metadata or {}) if row is not None else []
    return ConnectedApp(client_id, name, _plain_words(scope), granted_at,
                        access.last_used_at if access else None,
                        access.expires_at if access else None, links, changeable)


def connected_apps(user_id: int) -> list[ConnectedApp]:
    """Every app with a live consent or a live grant of this user, newest first."""
    access = store.authorization.user_app_access(user_id)
    apps: list[ConnectedApp] = []
    for consent in store.interaction.list_consents(user_id):
        a = access.pop(consent.client_id, None)
        apps.append(_app(consent.client_id, consent.scope, consent.created_at, a, True))
    for a in access.values():  # tokens without a consent on record
        apps.append(_app(a.client_id, "", a.first_granted_at, a, False))
    apps.sort(key=lambda app: -(app.granted_at or 0))
    return apps


def _known_id(client_id: Any) -> bool:
    return isinstance(client_id, str) and _CLIENT_ID.fullmatch(client_id) is not None


def connected_app(user_id: int, client_id: Any) -> ConnectedApp | None:
    """One of the user's connected apps (for the revoke confirmation), or None: unknown, or
    not connected by this user (another user's apps look the same as unknown ones)."""
    if not _known_id(client_id):
        return None
    return next((a for a in connected_apps(user_id) if a.client_id == client_id), None)


@store.transaction()
def revoke_app(user_id: int, client_id: str) -> bool:
    """End the user's consent for the app and every token of the app for the user, at once
    and together (one unit of work: a revoked grant fails introspection on every worker).
    False if there was nothing."""
    if not _known_id(client_id):
        return False
    known = store.interaction.get_consent(user_id, client_id) is not None or \
        client_id in store.authorization.user_app_access(user_id)
    if not known:
        return False
    store.interaction.revoke_consent(user_id, client_id)
    audit.record("consent.revoked", user_id=user_id, client_id=client_id, via="account")
    notices.access_changed(user_id, "revoked", _app_name(client_id))
    return True


def _app_name(client_id: str) -> str:
    row = store.clients.any_client(client_id)
    return row.client_name if row is not None and row.client_name else client_id


# ---- "Change": untick what an app may see ------------------------------------------------

@dataclass(frozen=True)
class ChangeForm:
    """The "Change" page of one app: its granted scopes as consent items, all ticked."""

    app: ConnectedApp
    items: list[ConsentItem]
    ticked: list[str]


def _change_items(scope: str) -> list[ConsentItem]:
    """The consent page's items for what is granted now (the launch context left out)."""
    return [i for i in consent_items(_scopes(scope), gettext=gettext)
            if i.scope.kind not in _CONTEXT_KINDS]


def change_form(user_id: int, client_id: Any) -> ChangeForm | None:
    """The "Change" page for the user's app, or None (unknown, not this user's, or no
    consent on record to change)."""
    consent = store.interaction.get_consent(user_id, client_id) if _known_id(client_id) \
        else None
    app = connected_app(user_id, client_id) if consent is not None else None
    if consent is None or app is None:
        return None
    items = _change_items(consent.scope)
    return ChangeForm(app, items, previously_chosen(items, consent.scope, consent.scope))


class Change(enum.Enum):
    """What submitting the "Change" page did."""

    NARROWED = "narrowed"
    UNCHANGED = "unchanged"
    REVOKED = "revoked"  # everything unticked
    UNKNOWN = "unknown"  # not one of this user's apps with a consent: nothing changed


def _meet(grant: list[Scope], kept: list[Scope]) -> list[Scope]:
    """What both allow: each grant scope some kept scope covers, and each kept scope some
    grant scope covers (a whole type kept as one category), grant order first."""
    out = {s.raw: s for s in narrow(grant, kept)}
    out.update({s.raw: s for s in narrow(kept, grant) if s.raw not in out})
    return list(out.values())


def _narrow_grant(grant: Grant, kept: list[Scope]) -> None:
    """Narrow one live grant to ``kept``: replaced by a narrower grant when it can still be
    refreshed and keeps data and a way to stay connected; otherwise revoked. Either way its
    access tokens end now."""
    scopes = _meet(_scopes(grant.scope), kept)
    if {s.raw for s in scopes} == set(grant.scope.split()):
        return  # nothing of this grant was taken away: its tokens stay as they are
    kinds = {s.kind for s in scopes}
    if kinds - _CONTEXT_KINDS and kinds & _STAY_CONNECTED and \
            store.grants.has_live_refresh_token(grant.id):
        store.grants.narrow_grant(grant, format_scopes(scopes))
    else:
        store.authorization.revoke_grant(grant.id)


@store.transaction()
def change_app(user_id: int, client_id: Any, chosen: list[str]) -> Change:
    """Keep only the ticked scopes (``chosen``: item values; anything else is ignored, so
    nothing can be added): the consent and each live grant of the app for this user are
    narrowed in one unit of work, audited as ``consent.changed``. Nothing ticked revokes."""
    consent = store.interaction.get_consent(user_id, client_id) if _known_id(client_id) \
        else None
    if consent is None:
        return Change.UNKNOWN
    kept = granted_from_choice(_change_items(consent.scope),
                               [c for c in chosen if isinstance(c, str)])
    if not kept:
        revoke_app(user_id, client_id)
        return Change.REVOKED
    kept = [s for s in _scopes(consent.scope) if s.kind in _CONTEXT_KINDS] + kept
    scope = format_scopes(kept)
    if set(scope.split()) == set(consent.scope.split()):
        return Change.UNCHANGED
    store.interaction.change_consent(consent, scope)
    for grant in store.grants.live_grants(user_id, client_id):
        _narrow_grant(grant, kept)
    audit.record("consent.changed", user_id=user_id, client_id=client_id, scope=scope)
    notices.access_changed(user_id, "narrowed", _app_name(client_id))
    return Change.NARROWED
