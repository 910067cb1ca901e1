"""What the /authorize flow asks the view to do next: one small type per kind of step.

The views render them (``views/authorize.py``, ``views/picker.py``); the flow
(:mod:`authserver.services.authorize_flow`) decides which.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from authserver.i18n import lazy_gettext
from authserver.smart.consent import ConsentItem

if TYPE_CHECKING:
    from authserver.models import PendingAuthorization

__all__ = ["AppFace", "Consent", "ErrorPage", "EXPIRED", "Offer", "PickPatient", "Redirect",
           "SignIn", "Step", "display_host", "https_only"]


def https_only(uri: object) -> str | None:
    """``uri`` when it is an absolute https URL a page may link to or load, else None (an
    http logo would be mixed content on an https page, an http link a downgrade; the
    loopback http that registration allows for development is not shown to people)."""
    if not isinstance(uri, str) or len(uri) > 2000 or any(c.isspace() or ord(c) < 32
                                                          for c in uri):
        return None
    try:
        parts = urlsplit(uri)
    except ValueError:
        return None
    return uri if parts.scheme == "https" and parts.hostname else None


@dataclass(frozen=True)
class AppFace:
    """What a page may show of a registered app: its name, and its logo and homepage
    (``client_uri``, RFC 7591 §2) only as https URLs. Never the request's redirect URI."""

    name: str
    logo_uri: str | None = None
    homepage: str | None = None

    @classmethod
    def of(cls, client: Any) -> AppFace:
        """From a client row or snapshot (``client_name``, ``client_metadata``)."""
        meta = getattr(client, "client_metadata", None) or {}
        return cls(str(getattr(client, "client_name", "") or "the app"),
                   https_only(meta.get("logo_uri")), https_only(meta.get("client_uri")))


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
    #: The app the page concerns, when it is a registered one (a way back to it).
    app: AppFace | None = None


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

#: Made at import, shown in the reader's language (lazy strings render as they are read).
EXPIRED = ErrorPage(lazy_gettext("This sign-in request has expired"),
                    lazy_gettext("Go back to the app and start again."))


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
