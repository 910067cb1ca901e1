"""A parked /authorize request: validated once on arrival and stored with what validation
established (:class:`Validated`); each later step re-checks only what can change in the
minutes between (:func:`load`): the app disabled, or its redirect URI, response type or
scopes taken away; an EHR launch used or expired. Whether someone is signed in, and who,
is the flow's question (services/authorize_flow.py).

RFC 6749 §4.1.2.1: while the redirect URI is not trusted, errors are pages
(:class:`~authserver.services.authorize_steps.ErrorPage`); afterwards they go back to the
app with ``state`` and ``iss`` (RFC 9207, added by the server's response handler).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidRequestError, InvalidScopeError
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from flask import current_app

from authserver import digests, store
from authserver.i18n import gettext
from authserver.oauth import server as oauth_server
from authserver.oauth.smart_launch import SmartAuthorizeRequest
from authserver.oauth.wire import quote_param
from authserver.services.authorize_steps import EXPIRED, AppFace, ErrorPage, Redirect, Step
from authserver.smart.grammar import format_scopes, scope_set

if TYPE_CHECKING:
    from authserver.models import PendingAuthorization, UserSession

__all__ = ["KNOWN_PARAMS", "MultiPayload", "Parked", "Validated", "error_step", "load",
           "park", "parked_request", "session_mark"]

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
    # The redirect URI is not trusted, but a registered app is named by its own record.
    client = oauth_server.current().query_client(request.payload.client_id)
    # The detail is the protocol's own error_description (what the app is told): English.
    return ErrorPage(gettext("This app's sign-in request is not valid"),
                     error.description or error.error,
                     app=AppFace.of(client.row) if client is not None else None)


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


@dataclass(frozen=True)
class Validated:
    """What /authorize established when the request arrived: the redirect URI the code goes
    to, the FHIR server (``aud``), the requested scopes the app may have (in the request's
    own grammar), and the EHR launch's row id."""

    redirect_uri: str
    aud: str
    scope: str
    launch_id: int | None = None

    @classmethod
    def of(cls, grant: Any) -> Validated:
        smart = grant.request.smart
        return cls(grant.redirect_uri, smart.aud, format_scopes(smart.scopes),
                   smart.launch.id if smart.launch is not None else None)

    @classmethod
    def stored(cls, value: Any) -> Validated | None:
        try:
            return cls(**value) if isinstance(value, dict) else None
        except TypeError:
            return None


@dataclass
class Parked:
    """A parked request for this step: the stored row, and Authlib's grant rebuilt with
    what was validated on arrival and re-checked for this step."""

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


def park(values: Any, note: str | None) -> str | Step:
    """Validate a new /authorize request (Authlib's checks, then the SMART ones) and keep it
    server side; its handle, or the error step."""
    req = parked_request({k: v for k, v in values.items(multi=False)})
    req.payload = MultiPayload(values)
    try:
        grant = oauth_server.current().get_consent_grant(request=req, end_user=None)
    except OAuth2Error as error:
        return error_step(req, error)
    params = {k: values.get(k) for k in KNOWN_PARAMS if values.get(k) is not None}
    return store.interaction.park_request(
        grant.client.client_id, params, asdict(Validated.of(grant)),
        current_app.config["PENDING_AUTHORIZATION_LIFETIME"], note=note)


def load(pending: PendingAuthorization) -> Parked | Step:
    """``pending`` for this step, with what can have changed since it arrived re-checked;
    an error ends it (a page while the app is not trusted, else back to the app)."""
    validated = Validated.stored(pending.validated)
    server = oauth_server.current()
    client = server.query_client(pending.client_id)
    if validated is None:  # parked by a version before the column: start again
        store.interaction.drop_pending(pending)
        return EXPIRED
    if client is None or not client.check_redirect_uri(validated.redirect_uri) or \
            not client.check_response_type("code"):
        store.interaction.drop_pending(pending)
        return ErrorPage(gettext("This app's sign-in request is not valid"),
                         gettext("The app was disabled or changed since it asked. Go back to "
                                 "the app and start again."),
                         app=AppFace.of(client.row) if client is not None else None)
    req = parked_request(pending.params)
    parked = Parked(pending, server.resumed_grant(req, client, validated.redirect_uri), req)
    allowed = set((client.get_allowed_scope(validated.scope) or "").split())
    scopes = [s for s in scope_set(validated.scope) if s.raw in allowed]
    if not scopes:
        return parked.refuse(InvalidScopeError(
            "None of the requested scopes is allowed for this client"))
    launch = None
    if validated.launch_id is not None:
        launch = store.interaction.live_launch(validated.launch_id)
        if launch is None:
            return parked.refuse(InvalidRequestError(
                "'launch' was already used or has expired"))
    req.smart = SmartAuthorizeRequest(aud=validated.aud, scopes=scopes, launch=launch)
    return parked
