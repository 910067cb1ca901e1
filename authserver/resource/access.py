"""SMART scopes at the resource server: may this token do interaction X on type T, and on
which resources?

SMART App Launch 2.2 "Scopes and Launch Context"
https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html — v1 and v2 scopes,
granular ``?category=`` constraints ("the resource server is responsible for ... filtering
results"), and the three compartments:

- ``patient/`` scopes reach only the patient in context (the token's ``patient``);
- ``user/`` scopes reach what the user may see: nothing without a ``fhirUser`` (the server
  always issues one with ``user/`` scopes); when ``fhirUser`` is a Patient, that patient's
  compartment; otherwise everything (a server with its own access rules passes
  ``user_can_see``);
- ``system/`` scopes reach everything.

The decision itself is :func:`authserver.smart.access.check_access` (tested over the SMART
scope examples); this module applies it per compartment and to concrete resources. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from authserver.smart.access import check_access, resource_matches, search_satisfies
from authserver.smart.grammar import Params, Scope

__all__ = ["Access", "Rule", "decide", "patient_of", "reference_id"]

#: Fields that put a resource in a patient's compartment (R4: Observation.subject,
#: Condition.subject, Encounter.subject, AllergyIntolerance.patient, Coverage.beneficiary...).
PATIENT_REFERENCE_FIELDS = ("subject", "patient", "beneficiary")
#: The SMART compartments, in the order rules are listed.
CONTEXTS = ("patient", "user", "system")


def reference_id(reference: Any, resource_type: str) -> str | None:
    """The id in a relative (``Patient/p1``) or absolute (``.../Patient/p1``) reference."""
    if not isinstance(reference, str):
        return None
    parts = reference.split("?", 1)[0].rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == resource_type and parts[-1]:
        return parts[-1]
    return None


def patient_of(resource: Mapping[str, Any]) -> str | None:
    """The id of the patient whose compartment holds ``resource`` (None: no patient)."""
    if not isinstance(resource, Mapping):
        return None
    if resource.get("resourceType") == "Patient":
        rid = resource.get("id")
        return rid if isinstance(rid, str) else None
    for name in PATIENT_REFERENCE_FIELDS:
        value = resource.get(name)
        if isinstance(value, Mapping):
            pid = reference_id(value.get("reference"), "Patient")
            if pid:
                return pid
    return None


@dataclass(frozen=True)
class Rule:
    """One compartment the token reaches for this interaction and type; ``filters`` None means
    every resource of the type there, else only those matching one of the parameter sets."""

    context: str  # 'patient' | 'user' | 'system'
    filters: tuple[Params, ...] | None


@dataclass(frozen=True)
class Access:
    """The outcome of :func:`decide`: ``allowed`` says whether to serve the request at all,
    :meth:`permits` which resources it may return or change."""

    allowed: bool
    interaction: str
    resource_type: str
    rules: tuple[Rule, ...]
    patient: str | None = None
    user_patient: str | None = None

    def permits(self, resource: Mapping[str, Any],
                user_can_see: Callable[[Mapping[str, Any]], bool] | None = None) -> bool:
        """True when some rule reaches ``resource`` (its compartment and granular filters)."""
        if resource.get("resourceType") != self.resource_type:
            return False
        for rule in self.rules:
            if rule.filters is not None and not any(
                    resource_matches(dict(resource), f) for f in rule.filters):
                continue
            if rule.context == "system":
                return True
            if rule.context == "patient":
                if self.patient and patient_of(resource) == self.patient:
                    return True
                continue
            if user_can_see is not None:
                if user_can_see(resource):
                    return True
            elif self.user_patient is None or patient_of(resource) == self.user_patient:
                return True
        return False

    def filter(self, resources: Iterable[Mapping[str, Any]],
               user_can_see: Callable[[Mapping[str, Any]], bool] | None = None
               ) -> list[Mapping[str, Any]]:
        return [r for r in resources if self.permits(r, user_can_see)]


def decide(scopes: Iterable[Scope], interaction: str, resource_type: str, *,
           patient: str | None = None, fhir_user: str | None = None,
           params: Mapping[str, list[str]] | None = None, strict: bool = False) -> Access:
    """Decide per compartment with :func:`check_access`.

    ``patient/`` scopes count only with a ``patient`` in context (SMART: a patient-level
    scope needs the patient established at launch); ``user/`` scopes only with a
    ``fhir_user``. With ``strict``, a search under a
    granular scope is allowed only when its own ``params`` already stay inside the scope's
    constraints (:func:`search_satisfies`); otherwise it is allowed and its results are
    filtered by :meth:`Access.permits`.
    """
    scopes = list(scopes)
    rules: list[Rule] = []
    for context in CONTEXTS:
        decision = check_access(scopes, interaction, resource_type, contexts=(context,))
        if not decision.allowed or (context == "patient" and not patient):
            continue
        if context == "user" and not fhir_user:
            # A user/ scope reaches what *the user* may see; without fhirUser nobody can
            # tell who that is, so it reaches nothing (never everything).
            continue
        if strict and params is not None and not search_satisfies(params, decision.filters):
            continue
        rules.append(Rule(context, decision.filters))
    return Access(bool(rules), interaction, resource_type, tuple(rules), patient,
                  reference_id(fhir_user, "Patient"))
