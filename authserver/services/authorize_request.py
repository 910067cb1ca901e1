"""A parked /authorize request: validated on arrival, kept server side by a handle, and
validated again at each later step (the client, its redirect URIs and scopes, and the
launch may have changed since).

RFC 6749 §4.1.2.1: while the redirect URI is not trusted, errors are pages
(:class:`~authserver.services.authorize_steps.ErrorPage`); afterwards they go back to the
app with ``state`` and ``iss`` (RFC 9207, added by the server's response handler).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from flask import current_app

from authserver import digests, store
from authserver.oauth import server as oauth_server
from authserver.oauth.wire import quote_param
from authserver.services.authorize_steps import ErrorPage, Redirect, Step

if TYPE_CHECKING:
    from authserver.models import PendingAuthorization, UserSession

__all__ = ["KNOWN_PARAMS", "MultiPayload", "Parked", "error_step", "parked_request",
           "revalidate", "session_mark"]

#: Parameters kept with a parked request; anything else is ignored (RFC 6749 §3.1).
KNOWN_PARAMS = ("response_type", "client_id", "redirect_uri", "scope", "state", "aud",
                "resource", "launch", "code_challenge", "code_challenge_method", "nonce",
                "prompt", "max_age")


def parked_request(params: dict[str, str]) -> OAuth2Request:
    req = OAuth2Request("GET", current_app.config["ISSUER"] + "/authorize", headers={})
    req.payload = BasicOAuth2Payload(dict(params))
    return req


def error_step(request: OAuth2Request, error: OAuth2Error) -> Step:
    if error.redirect_uri:
        resp = oauth_server.current().handle_error_response(request, error)
        return Redirect(resp.headers["Location"])
    return ErrorPage("This app's sign-in request is not valid",
                     error.description or error.error)


def session_mark(sess: UserSession | None) -> str | None:
    """What a parked request remembers of the sign-in it arrived in (a digest, not the id):
    ``prompt=login`` is satisfied only by a sign-in after it."""
    return f"sid:{digests.sha256_hex(sess.id)}" if sess is not None else None


class MultiPayload(BasicOAuth2Payload):
    """A payload over a werkzeug MultiDict that keeps repeated values visible."""

    def __init__(self, values: Any) -> None:
        data = {k: values.get(k) for k in values}
        if data.get("response_type") not in (None, "code"):
            # Authlib quotes an unsupported response_type in its error_description, which
            # must be printable ASCII (else Authlib raises: a 500).
            data["response_type"] = quote_param(data["response_type"])
        super().__init__(data)
        self._lists = {k: values.getlist(k) for k in values}

    @property
    def datalist(self) -> dict[str, list]:  # Authlib's documented payload property
        return self._lists


@dataclass
class Parked:
    """A parked request, validated again for this step (client, redirect URI, scope and
    launch may have changed since it was parked)."""

    pending: PendingAuthorization
    grant: Any
    req: OAuth2Request

    @property
    def launch(self) -> Any:
        return self.grant.request.smart.launch

    def refuse(self, error: OAuth2Error) -> Step:
        """Send ``error`` back to the app (its redirect URI is trusted by now)."""
        error.redirect_uri = self.grant.redirect_uri
        error.state = self.pending.params.get("state")
        store.interaction.drop_pending(self.pending)
        return error_step(self.req, error)


def revalidate(pending: PendingAuthorization) -> Parked | Step:
    """Validate ``pending`` again (Authlib's checks and the SMART ones); an error ends it."""
    req = parked_request(pending.params)
    try:
        grant = oauth_server.current().get_consent_grant(request=req, end_user=None)
    except OAuth2Error as error:
        store.interaction.drop_pending(pending)
        return error_step(req, error)
    return Parked(pending, grant, req)
