"""What the /authorize flow asks the view to do next: one small type per kind of step.

The views render them (``views/authorize.py``, ``views/picker.py``); the flow
(:mod:`authserver.services.authorize_flow`) decides which.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from authserver.smart.consent import ConsentItem

if TYPE_CHECKING:
    from authserver.models import PendingAuthorization

__all__ = ["Consent", "ErrorPage", "EXPIRED", "Offer", "PickPatient", "Redirect", "SignIn",
           "Step", "display_host"]


@dataclass(frozen=True)
class Redirect:
    """Back to the app (a code or an error, RFC 6749 §4.1.2), ``iss`` included."""

    location: str


@dataclass(frozen=True)
class SignIn:
    """On to the sign-in page, or to the continuation of a parked request."""

    location: str


@dataclass(frozen=True)
class ErrorPage:
    """A page, never a redirect: the redirect URI is not trusted (RFC 6749 §4.1.2.1), or
    the request has ended."""

    title: str
    message: str
    status: int = 400


@dataclass(frozen=True)
class PickPatient:
    """A clinician's standalone launch needs a patient (the picker)."""

    pending: PendingAuthorization
    client: Any


@dataclass(frozen=True)
class Consent:
    """The consent page: what is asked, and the person's previous choice for this app."""

    items: list[ConsentItem]
    client: Any
    pending: PendingAuthorization
    #: Where the browser goes after the decision (the redirect URI's host), for the page.
    redirect_host: str
    #: The values to tick (None: all, a first consent) and when the person last chose.
    ticked: list[str] | None = None
    previous_at: int | None = None
    #: The patient whose record a clinician is sharing (named on the page), or None.
    patient: Any = None
    #: Who is signed in, as the page names them; how long access lasts, in words.
    signed_in_as: str = ""
    lasts: str = ""
    #: "Allow" came with nothing ticked: the page asks once whether Deny was meant.
    empty_choice: bool = False


@dataclass(frozen=True)
class Offer:
    """What a signed-in person may grant: the launch context, the consent items, and the
    patient a clinician acts on (None for a patient's own record)."""

    ctx: dict[str, Any]
    items: list[ConsentItem]
    patient: Any = None


Step = Redirect | SignIn | ErrorPage | PickPatient | Consent

EXPIRED = ErrorPage("This sign-in request has expired", "Go back to the app and start again.")


def display_host(uri: str | None) -> str:
    """The host (and a non-default port) of ``uri`` as a person should read it: ASCII
    (punycode) so that a look-alike Unicode name cannot pass for a familiar one."""
    try:
        parts = urlsplit(uri or "")
        host = (parts.hostname or "").encode("idna").decode("ascii")
        port = parts.port
    except (ValueError, UnicodeError):
        return ""
    return f"{host}:{port}" if port else host
