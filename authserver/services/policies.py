"""Who may see what: the verbs that set an administrator's scope policies (``authserver
policy set|unset|show`` and the admin console). Each person's ceiling
(:mod:`authserver.smart.ceiling`) is their role's default narrowed by these policies;
:func:`authserver.oauth.ceilings.ceiling_for` reads it at authorization and at every refresh.

A policy is stored per subject: ``role:<role>`` or ``user:<id>``; a user's policy replaces
their role's. Not-found: no policy means the role's default ceiling. Changes take effect at
the next authorization and the next refresh (access tokens already issued keep their scope
until they expire, at most ``ACCESS_TOKEN_LIFETIME``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from authserver import audit, clock, identifiers, store
from authserver.smart.ceiling import Ceiling, PolicyError, check_policy, effective_ceiling
from authserver.smart.grammar import format_scopes
from authserver.smart.roles import Role
from authserver.smart.words import N_, Words

if TYPE_CHECKING:
    from authserver.models import User

__all__ = ["PolicyError", "set_policy", "unset_policy", "show_policy"]


def _subject(role: str | None, username: str | None) -> tuple[str, str | None]:
    """(subject key, the role whose rules apply); PolicyError for an unknown one."""
    if (role is None) == (username is None):
        raise PolicyError("name exactly one of --role or --user")
    if role is not None:
        if Role.parse(role) is None:
            raise PolicyError(Words(N_("unknown role {role} (one of {roles})"), role=repr(role),
                                roles=", ".join(Role)))
        return f"role:{role}", role
    user = _user(username)
    return f"user:{user.id}", user.role


def _user(username: str | None) -> User:
    name = identifiers.username(username)
    user = None
    if name is not None:
        user = store.accounts.find_username(name)
    if user is None:
        raise PolicyError(Words(N_("no user {username}"), username=repr(username)))
    return user


@store.transaction()
def set_policy(scope: str, *, role: str | None = None, username: str | None = None,
               by: int | None = None) -> dict[str, Any]:
    """Set the ceiling of a role or a user (replacing any earlier one)."""
    subject, applies_to = _subject(role, username)
    text = format_scopes(check_policy(applies_to, scope if isinstance(scope, str) else ""))
    store.policies.put(subject, text, clock.now(), by)
    audit.record("policy.set", user_id=by, subject=subject, scope=text)
    return {"subject": subject, "scope": text}


@store.transaction()
def unset_policy(*, role: str | None = None, username: str | None = None,
                 by: int | None = None) -> dict[str, Any]:
    """Remove a role's or user's policy (back to the role's default)."""
    subject, _ = _subject(role, username)
    if store.policies.remove(subject):
        audit.record("policy.unset", user_id=by, subject=subject)
    return {"subject": subject, "scope": None}


def show_policy() -> dict[str, Any]:
    """Every policy, with each role's default for reference."""
    rows = store.policies.all_policies()
    users = store.accounts.usernames_of(
        [int(r.subject[5:]) for r in rows if r.subject.startswith("user:")])
    out: dict[str, Any] = {"roles": {}, "users": {}}
    for role in Role:
        default = effective_ceiling(role.value, "Practitioner/x" if role == Role.CLINICIAN
                                    else None, None, None)
        out["roles"][role.value] = {"default": _describe(default), "policy": None}
    for r in rows:
        kind, _, key = r.subject.partition(":")
        if kind == "role" and key in out["roles"]:
            out["roles"][key]["policy"] = r.scope
        elif kind == "user":
            out["users"][users.get(int(key), key)] = r.scope
    return out


def _describe(ceiling: Ceiling) -> str:
    return " ".join([r.raw for r in ceiling.resources] + sorted(ceiling.kinds))
