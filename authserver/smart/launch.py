"""SMART launch context rules (pure).

SMART App Launch 2.2 §"Launch context arrives with your access_token"
(https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html#launch-context-arrives-with-your-access_token).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

__all__ = ["LaunchError", "validate_fhir_context", "token_context", "CONTEXT_KEYS"]

#: Token-response parameters that carry launch context, in the order we emit them.
CONTEXT_KEYS = ("patient", "encounter", "fhirContext", "need_patient_banner", "smart_style_url",
                "intent", "tenant")
_REFERENCE = re.compile(r"[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}")


class LaunchError(ValueError):
    pass


def validate_fhir_context(value: Any) -> list[dict[str, Any]] | None:
    """Validate SMART 2.2 ``fhirContext``: a list of objects each with at least one of
    ``reference`` (relative ``Type/id``), ``canonical`` or ``identifier`` (object);
    optional ``type`` and ``role`` (an absolute URI unless SMART-defined, never empty).
    Patient/Encounter references are only allowed with a ``role`` other than ``launch``."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > 20:
        raise LaunchError("must be a JSON array (at most 20 items)")
    out = []
    for item in value:
        if isinstance(item, str):  # SMART 2.0 form: a relative reference string
            item = {"reference": item}
        if not isinstance(item, dict):
            raise LaunchError("each item must be an object")
        if not any(k in item for k in ("reference", "canonical", "identifier")):
            raise LaunchError("each item needs 'reference', 'canonical' or 'identifier'")
        ref = item.get("reference")
        if ref is not None and (not isinstance(ref, str) or not _REFERENCE.fullmatch(ref)):
            raise LaunchError("'reference' must be a relative reference like 'Type/id'")
        if "identifier" in item and not isinstance(item["identifier"], dict):
            raise LaunchError("'identifier' must be an object")
        if "canonical" in item and not isinstance(item["canonical"], str):
            raise LaunchError("'canonical' must be a string")
        role = item.get("role")
        if role is not None:
            if not isinstance(role, str) or not role:
                raise LaunchError("'role' must be a non-empty string")
            if role != "launch" and not urlsplit(role).scheme:
                raise LaunchError("'role' must be an absolute URI")
        if ref and ref.split("/")[0] in ("Patient", "Encounter") and role in (None, "launch"):
            raise LaunchError("Patient/Encounter go in 'patient'/'encounter', not fhirContext")
        typ = item.get("type")
        if typ is not None and (not isinstance(typ, str)
                                or not re.fullmatch(r"[A-Z][A-Za-z]+", typ)):
            raise LaunchError("'type' must be a FHIR resource type")
        out.append({k: item[k] for k in ("reference", "canonical", "identifier", "type", "role")
                    if k in item})
    return out


def token_context(context: dict[str, Any], granted: Iterable[str]) -> dict[str, Any]:
    """The launch-context parameters to put in a token response, from a stored context."""
    del granted  # every established context is returned; scopes decided what was established
    return {k: context[k] for k in CONTEXT_KEYS if context.get(k) not in (None, "", [])}
