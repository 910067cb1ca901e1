"""Scope ceilings: the most a person's grants may hold, whatever the app registered or asked.

Every user grant is the intersection of the app's registered scopes, the request, the
person's consent and the person's **ceiling** (this module). RFC 6749 §3.3: "The
authorization server MAY fully or partially ignore the scope requested by the client,
based on the authorization server policy or the resource owner's instructions" — so a scope
beyond the ceiling is narrowed or dropped, never refused, and the granted ``scope`` in the
token response says what was granted.

Default ceilings by role (:func:`role_ceiling`):

- **patient**: ``patient/`` scopes only (their own record: the launch context is always
  their own patient), identity, launch and access-duration scopes; never ``user/`` or
  ``system/``.
- **clinician**: ``user/`` and ``patient/`` scopes (``user/`` only with a ``fhirUser``: a
  resource server cannot tell whose access a ``user/`` token carries without one), and every
  identity, launch and access-duration scope.
- **admin**, **developer**: identity only (``openid fhirUser profile email``), unless their
  ``fhirUser`` is clinical (Practitioner, PractitionerRole): then as a clinician.
- ``system/`` scopes never: they exist only in ``client_credentials``.

An administrator's policy (a scope list in the SMART grammar, per role or per user)
narrows the **data** scopes (``patient/``, ``user/``) within the role's default, and may
allow non-SMART scopes by name; identity, launch and access-duration scopes follow the role.
Pure: standard library only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from authserver.smart.grammar import (
    PERMISSION_ORDER,
    ResourceScope,
    Scope,
    ScopeError,
    parse_scope,
    parse_scopes,
)
from authserver.smart.roles import Role
from authserver.smart.words import N_, Words

__all__ = ["CLINICAL_FHIR_USER_TYPES", "IDENTITY_KINDS", "Ceiling", "PolicyError",
           "apply_ceiling", "check_policy", "effective_ceiling", "intersect",
           "role_ceiling"]

#: ``fhirUser`` types that make an admin or developer a clinical user.
CLINICAL_FHIR_USER_TYPES = ("Practitioner", "PractitionerRole")
#: The identity scopes an account without clinical access may grant.
IDENTITY_KINDS = frozenset({"openid", "fhirUser", "profile", "email"})
#: Identity, launch and access-duration scopes: what a clinical role grants besides data.
_CLINICAL_KINDS = IDENTITY_KINDS | {"launch", "launch_context", "offline_access",
                                    "online_access"}
_ALL = "cruds"


class PolicyError(ValueError):
    """An administrator's policy is not a valid ceiling; the message says why."""


@dataclass(frozen=True)
class Ceiling:
    """What a person's grants may hold: data scopes (``resources``), other SMART scope
    kinds by kind, and non-SMART scopes by name (``extra``)."""

    resources: tuple[ResourceScope, ...]
    kinds: frozenset[str]
    extra: frozenset[str] = frozenset()

    def narrowed_to(self, policy: Iterable[Scope]) -> Ceiling:
        """This ceiling limited by an administrator's policy (see the module docstring)."""
        policy = list(policy)
        wanted = [s.resource for s in policy if s.resource is not None]
        resources = tuple(r for w in wanted for c in self.resources
                          if (r := intersect(w, c)) is not None)
        extra = frozenset(s.raw for s in policy if s.kind == "other")
        return Ceiling(_simplify(resources), self.kinds, self.extra | extra)


def _resource(text: str) -> ResourceScope:
    resource = parse_scope(text).resource
    assert resource is not None
    return resource


def role_ceiling(role: str, fhir_user: str | None) -> Ceiling:
    """The default ceiling of a role (module docstring); ``fhir_user`` is ``Type/id``."""
    fhir_type = (fhir_user or "").partition("/")[0]
    clinical = role == Role.CLINICIAN or (role in (Role.ADMIN, Role.DEVELOPER)
                                          and fhir_type in CLINICAL_FHIR_USER_TYPES)
    if role == Role.PATIENT:
        return Ceiling((_resource(f"patient/*.{_ALL}"),), _CLINICAL_KINDS)
    if clinical:
        data = [_resource(f"patient/*.{_ALL}")]
        if fhir_user:
            data.append(_resource(f"user/*.{_ALL}"))
        return Ceiling(tuple(data), _CLINICAL_KINDS)
    return Ceiling((), IDENTITY_KINDS)


def check_policy(role: str | None, text: str) -> list[Scope]:
    """Parse an administrator's policy; raises :class:`PolicyError` when it is malformed,
    names ``system/`` scopes, or names ``user/`` scopes for the patient role."""
    try:
        scopes = parse_scopes(text)
    except ScopeError as exc:
        raise PolicyError(str(exc)) from None
    for s in scopes:
        if s.raw == "introspect":
            raise PolicyError(Words(N_("introspect is a client's permission (an "
                                       "administrator's flag on the app), never a person's "
                                       "to grant")))
        if s.resource is not None and s.resource.context == "system":
            raise PolicyError(Words(N_("{scope}: system/ scopes exist only in "
                                       "client_credentials, never in a person's grant"),
                                    scope=s.raw))
        if role == Role.PATIENT and s.resource is not None and s.resource.context == "user":
            raise PolicyError(Words(N_("{scope}: a patient never gets user/ scopes"),
                                    scope=s.raw))
    return scopes


def effective_ceiling(role: str, fhir_user: str | None, role_policy: str | None,
                      user_policy: str | None) -> Ceiling:
    """The role's default, narrowed by the user's policy if set, else by the role's."""
    ceiling = role_ceiling(role, fhir_user)
    policy = user_policy if user_policy is not None else role_policy
    if policy is None:
        return ceiling
    try:
        scopes = parse_scopes(policy)
    except ScopeError:
        return Ceiling((), ceiling.kinds)  # a stored policy that no longer parses: no data
    return ceiling.narrowed_to(scopes)


# ---- intersection --------------------------------------------------------------------

def _permissions(a: str, b: str) -> str:
    return "".join(p for p in PERMISSION_ORDER if p in a and p in b)


_V1_OF = {"rs": "read", "cud": "write", "cruds": "*"}


def _text(context: str, resource_type: str, permissions: str, params: tuple, v1: bool) -> str:
    if v1 and not params and permissions in _V1_OF:
        return f"{context}/{resource_type}.{_V1_OF[permissions]}"
    text = f"{context}/{resource_type}.{permissions}"
    if params:
        text += "?" + "&".join(f"{name}={value}" for name, value in params)
    return text


def intersect(asked: ResourceScope, limit: ResourceScope) -> ResourceScope | None:
    """The access both scopes grant, or None. ``asked`` itself (its very string, v1 or v2)
    when ``limit`` covers it; else a narrower scope, in v1 syntax when ``asked`` was v1 and
    v1 can say it, v2 otherwise. Granular constraints of both apply (they are ANDed)."""
    if asked.context != limit.context:
        return None
    if limit.resource_type == "*":
        resource_type = asked.resource_type
    elif asked.resource_type in ("*", limit.resource_type):
        resource_type = limit.resource_type
    else:
        return None
    permissions = _permissions(asked.permissions, limit.permissions)
    if not permissions:
        return None
    params = asked.params + tuple(p for p in limit.params if p not in asked.params)
    if (resource_type, permissions, params) == (asked.resource_type, asked.permissions,
                                                asked.params):
        return asked
    text = _text(asked.context, resource_type, permissions, params, asked.version == 1)
    return _resource(text)


def _simplify(resources: Iterable[ResourceScope]) -> tuple[ResourceScope, ...]:
    """Unique by string, without any scope another one already covers."""
    unique = list({r.raw: r for r in resources}.values())
    return tuple(r for r in unique
                 if not any(o is not r and o.covers(r) and not r.covers(o) for o in unique))


def apply_ceiling(scopes: Iterable[Scope], ceiling: Ceiling) -> list[Scope]:
    """The requested ``scopes`` narrowed to ``ceiling``, in request order. A data scope the
    ceiling covers stays exactly as requested; one it partly covers becomes the narrower
    scope(s) it allows; the rest are dropped."""
    out: list[Scope] = []
    for scope in scopes:
        if scope.resource is not None:
            parts = _simplify(r for c in ceiling.resources
                              if (r := intersect(scope.resource, c)) is not None)
            out += [scope if p is scope.resource else parse_scope(p.raw) for p in parts]
        elif scope.kind == "other":
            if scope.raw in ceiling.extra:
                out.append(scope)
        elif scope.kind in ceiling.kinds:
            out.append(scope)
    seen: set[str] = set()
    return [s for s in out if not (s.raw in seen or seen.add(s.raw))]
