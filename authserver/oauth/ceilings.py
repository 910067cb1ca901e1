"""The scope ceiling in force for a person now: their role's default
(:mod:`authserver.smart.ceiling`) narrowed by an administrator's policy (a user's policy
replaces their role's). Read at /authorize before consent and at every refresh, so a ceiling
lowered since the grant narrows the next access token. The policies themselves are set by
:mod:`authserver.services.policies`.

https://www.rfc-editor.org/rfc/rfc6749#section-3.3 ("The authorization server MAY fully or
partially ignore the scope requested by the client, based on the authorization server policy
or the resource owner's instructions.")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from authserver import store
from authserver.smart.ceiling import Ceiling, effective_ceiling

if TYPE_CHECKING:
    from authserver.models import User

__all__ = ["ceiling_for"]


def ceiling_for(user: User) -> Ceiling:
    """``user``'s ceiling now: their role's default narrowed by the applicable policy."""
    rows = store.policies.scopes_of((f"role:{user.role}", f"user:{user.id}"))
    return effective_ceiling(user.role, user.fhir_user, rows.get(f"role:{user.role}"),
                             rows.get(f"user:{user.id}"))
