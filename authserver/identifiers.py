"""Names people and records are known by: usernames, FHIR ids and ``fhirUser`` references.

Each is NFKC-normalised (so a full-width or ligature look-alike becomes the plain letters
it renders as) and then matched *whole* (``re.fullmatch``: a ``$`` anchor would let a
trailing newline through). Usernames are unique case-insensitively: :func:`username_key` is
what the database keeps unique and what sign-in looks up. Pure: standard library only.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["FHIR_USER_TYPES", "clean", "fhir_id", "fhir_user", "username", "username_key"]

#: FHIR resource types that may stand for a signed-in person (SMART ``fhirUser``).
FHIR_USER_TYPES = ("Patient", "Practitioner", "PractitionerRole", "RelatedPerson", "Person")
#: FHIR R4 ``id``: "[A-Za-z0-9\\-\\.]{1,64}".
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_USERNAME = re.compile(r"[A-Za-z0-9._@+\-]{1,150}")
_FHIR_USER = re.compile(r"(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})")


def clean(value: object) -> str | None:
    """``value`` NFKC-normalised, or None when it is not a string."""
    if not isinstance(value, str):
        return None
    return unicodedata.normalize("NFKC", value)


def username(value: object) -> str | None:
    """The normalised username, or None when it is not letters, digits and ``. _ @ + -``."""
    text = clean(value)
    return text if text is not None and _USERNAME.fullmatch(text) else None


def username_key(value: str) -> str:
    """The case-insensitive identity of a username (NFKC, case-folded)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold())


def fhir_id(value: object) -> str | None:
    """The normalised FHIR logical id, or None."""
    text = clean(value)
    return text if text is not None and _FHIR_ID.fullmatch(text) else None


def fhir_user(value: object, types: tuple[str, ...] = FHIR_USER_TYPES) -> str | None:
    """The normalised ``Type/id`` reference for a person, or None."""
    text = clean(value)
    if text is None:
        return None
    m = _FHIR_USER.fullmatch(text)
    return text if m is not None and m.group("type") in types else None
