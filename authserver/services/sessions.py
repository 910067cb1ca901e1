"""The account page's signed-in sessions: where the person is signed in, and "Sign out
everywhere else".

Ending a session ends every ``online_access`` grant made under it ("usable for as long as
the end-user remains online", SMART App Launch 2.2): such a grant is live only while its
session is (``store.authorization``: introspection and the refresh grant both join the
session row), so nothing else needs revoking. ``offline_access`` apps stay connected.
"""

from __future__ import annotations

from dataclasses import dataclass

from authserver import audit, store
from authserver.auth.devices import describe_device
from authserver.i18n import translate
from authserver.services import notices

__all__ = ["SignedInSession", "end_other_sessions", "signed_in_sessions"]


@dataclass(frozen=True)
class SignedInSession:
    """What the page shows of one session (never its id: that is the cookie's secret)."""

    device: str
    ip: str | None
    signed_in_at: int
    last_seen_at: int | None
    current: bool


def signed_in_sessions(user_id: int, current_id: str | None) -> list[SignedInSession]:
    """The user's live sessions, this one first, then the most recently used."""
    rows = store.accounts.live_sessions(user_id)
    out = [SignedInSession(translate(describe_device(r.user_agent)), r.ip, r.auth_time,
                           r.last_seen_at, r.id == current_id) for r in rows]
    return sorted(out, key=lambda s: not s.current)  # stable: the rest keep their order


@store.transaction()
def end_other_sessions(user_id: int, current_id: str) -> int:
    """End every live session of the user but ``current_id`` (and the ``online_access``
    grants made under them); audited as ``session.ended_others``. Returns how many."""
    ended = store.accounts.end_sessions_of(user_id, keep=current_id)
    audit.record("session.ended_others", user_id=user_id, sessions=ended)
    if ended:
        notices.access_changed(user_id, "others")
    return ended
