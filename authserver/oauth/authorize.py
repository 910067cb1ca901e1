"""The authorization endpoint's flow: validate, park, sign in, establish context, consent.

RFC 6749 §4.1.2.1: an unknown ``client_id`` or unregistered ``redirect_uri`` is shown as an
error page and never redirected; every other error is redirected with ``error``,
``error_description``, ``state`` and ``iss`` (RFC 9207). A request that arrives by a
cross-site POST needs no cookie: it is kept server side and continued by its handle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.errors import AccessDeniedError, InvalidRequestError
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oidc.core.errors import (
    ConsentRequiredError,
    InteractionRequiredError,
    LoginRequiredError,
)
from flask import current_app

from authserver import audit, clock, digests, store
from authserver.models import PendingAuthorization, Role, User, UserSession
from authserver.oauth import server as oauth_server
from authserver.oauth.ceilings import ceiling_for
from authserver.oauth.grants import Authorization
from authserver.oauth.launch import quote_param
from authserver.smart.ceiling import apply_ceiling
from authserver.smart.scopes import (
    ConsentItem,
    Scope,
    consent_items,
    format_scopes,
    granted_from_choice,
    previously_chosen,
)

__all__ = ["Step", "begin", "resume", "signed_out", "decide", "choose_patient", "picker_check",
           "KNOWN_PARAMS"]

#: The role that may pick any patient and use EHR launches.
CLINICIAN = Role.CLINICIAN

#: Parameters kept with a parked request; anything else is ignored (RFC 6749 §3.1).
KNOWN_PARAMS = ("response_type", "client_id", "redirect_uri", "scope", "state", "aud",
                "resource", "launch", "code_challenge", "code_challenge_method", "nonce",
                "prompt", "max_age")


@dataclass
class Step:
    """What the view should do next."""

    kind: str  # 'redirect' | 'error_page' | 'login' | 'pick_patient' | 'consent'
    location: str | None = None
    title: str = ""
    message: str = ""
    items: list[ConsentItem] = field(default_factory=list)
    client: Any = None
    pending: PendingAuthorization | None = None
    status: int = 400
    #: Where the browser goes after the decision (the redirect URI's host), for the page.
    redirect_host: str = ""
    #: Consent page: the values to tick (None: all, a first consent) and when the person
    #: last chose for this app.
    ticked: list[str] | None = None
    previous_at: int | None = None


def _parked_request(params: dict[str, str]) -> OAuth2Request:
    req = OAuth2Request("GET", current_app.config["ISSUER"] + "/authorize", headers={})
    req.payload = BasicOAuth2Payload(dict(params))
    return req


def _error_step(request: OAuth2Request, error: OAuth2Error) -> Step:
    if error.redirect_uri:
        resp = oauth_server.current().handle_error_response(request, error)
        return Step("redirect", location=resp.headers["Location"])
    return Step("error_page", title="This app's sign-in request is not valid",
                message=error.description or error.error)


def _session_mark(sess: UserSession | None) -> str | None:
    """What a parked request remembers of the sign-in it arrived in (a digest, not the id):
    ``prompt=login`` is satisfied only by a sign-in after it."""
    return f"sid:{digests.sha256_hex(sess.id)}" if sess is not None else None


@store.transaction()
def begin(values: Any, sess: UserSession | None = None) -> Step:
    """A new /authorize request (GET query or POST form): validate and park it. ``sess`` is
    the sign-in the browser already has, if any."""
    req = _parked_request({k: v for k, v in values.items(multi=False)})
    req.payload = _MultiPayload(values)
    try:
        grant = oauth_server.current().get_consent_grant(request=req, end_user=None)
    except OAuth2Error as error:
        return _error_step(req, error)
    params = {k: values.get(k) for k in KNOWN_PARAMS if values.get(k) is not None}
    rid = store.interaction.park_request(grant.client.client_id, params,
                                         current_app.config["PENDING_AUTHORIZATION_LIFETIME"],
                                         note=_session_mark(sess))
    return Step("login", location=f"/authorize/continue?req={rid}")


class _MultiPayload(BasicOAuth2Payload):
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


def _revalidate(pending: PendingAuthorization) -> tuple[Any, OAuth2Request]:
    req = _parked_request(pending.params)
    return oauth_server.current().get_consent_grant(request=req, end_user=None), req


def _needs_patient(scopes: list[Scope]) -> bool:
    return any(s.raw.startswith("launch/patient") or
               (s.resource is not None and s.resource.context == "patient") for s in scopes)


def _own_patient(user: User) -> str | None:
    if user.fhir_user and user.fhir_user.startswith("Patient/"):
        return user.fhir_user.split("/", 1)[1]
    return None


def _context(grant: Any, user: User, pending: PendingAuthorization,
             scopes: list[Scope]) -> dict[str, Any] | Step:
    """The launch context for the (ceiling-narrowed) ``scopes``, or a Step (patient picker,
    or an error).

    Only clinicians choose a patient (the picker) or use an EHR launch for any patient; a
    patient gets their own record only, in a standalone launch and in an EHR launch alike.
    """
    smart = grant.request.smart
    launch = smart.launch
    if launch is not None:
        if launch.user_id is not None and launch.user_id != user.id:
            raise InvalidRequestError("'launch' was made for another user")
        if user.role == "patient":
            if launch.patient != _own_patient(user):
                raise AccessDeniedError("This launch is for another patient's record")
        elif user.role != CLINICIAN:
            raise AccessDeniedError("Only clinicians can use an EHR launch")
        ctx = {"patient": launch.patient, "encounter": launch.encounter,
               "fhirContext": launch.fhir_context, "intent": launch.intent,
               "need_patient_banner": bool(launch.need_patient_banner),
               "smart_style_url": launch.smart_style_url, "tenant": launch.tenant}
        return {k: v for k, v in ctx.items() if v is not None}
    if not _needs_patient(scopes):
        return {}
    if user.role == "patient":
        own = _own_patient(user)
        if own is None:
            raise AccessDeniedError("There is no patient record for this account")
        return {"patient": own}
    if user.role != CLINICIAN:
        raise AccessDeniedError("Only clinicians can choose a patient")
    if pending.patient:
        return {"patient": pending.patient}
    return Step("pick_patient", pending=pending, client=grant.client.row)


def _allowed(grant: Any, user: User) -> list[Scope]:
    """The requested scopes the app may have, narrowed to what ``user`` may see (their scope
    ceiling, :mod:`authserver.oauth.ceilings`). Raises ``access_denied`` when nothing but launch
    context would be left."""
    scopes = apply_ceiling(grant.request.smart.scopes, ceiling_for(user))
    if all(s.kind in ("launch", "launch_context") for s in scopes):
        # RFC 6749 §3.3: the server may grant less than requested; with nothing left to
        # grant, the authorization server denies the request (§4.1.2.1 access_denied).
        raise AccessDeniedError("This account may not grant any of the requested scopes")
    return scopes


def _offered(grant: Any, scopes: list[Scope]) -> list[ConsentItem]:
    if grant.request.smart.launch is None:
        # `launch/encounter` in a standalone launch: DROPPED, not refused. SMART
        # (scopes-and-launch-context, "Standalone apps"): "The EHR SHOULD provide the
        # requested context ... unless otherwise noted" (a SHOULD; we have no encounter
        # picker and do not advertise context-standalone-encounter), and RFC 6749 §3.3 lets
        # the server grant fewer scopes than requested, saying so in the token response's
        # `scope`. Refusing would break apps that ask for it only in case it is available.
        scopes = [s for s in scopes if s.raw != "launch/encounter"]
    return consent_items(scopes)


def _with_launch(grant: Any, granted: list[Scope]) -> list[Scope]:
    """SMART EHR launch: the granted scopes repeat `launch` (the context the EHR already
    decided on is not the user's to untick), in front, once anything at all is granted."""
    if grant.request.smart.launch is None or not granted:
        return granted
    launch = [s for s in grant.request.smart.scopes if s.kind == "launch"]
    return launch + [s for s in granted if s.kind != "launch"]


def picker_check(rid: str, user: User) -> Step | None:
    """An error Step unless ``user`` is a clinician continuing their own parked request:
    the registry is shown to no one else."""
    pending = store.interaction.get_pending(rid)
    if pending is None or pending.user_id != user.id:
        return Step("error_page", title="This sign-in request has expired",
                    message="Go back to the app and start again.")
    if user.role != CLINICIAN:
        return Step("error_page", title="Only clinicians can choose a patient",
                    message="Go back to the app and start again.", status=403)
    return None


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


def _prompts(pending: PendingAuthorization) -> set[str]:
    return set(str(pending.params.get("prompt") or "").split())


def _needs_fresh_sign_in(pending: PendingAuthorization, sess: UserSession) -> bool:
    """OIDC Core §3.1.2.1: ``prompt=login`` (and ``select_account``, which we serve the
    same way) "SHOULD prompt the End-User for reauthentication"; ``max_age``: "If the
    elapsed time is greater than this value, the OP MUST attempt to actively re-authenticate
    the End-User"."""
    prompts = _prompts(pending)
    if prompts & {"login", "select_account"} and (
            sess.auth_time < pending.created_at or pending.note == _session_mark(sess)):
        return True  # the sign-in is older than the request, or the one it arrived in
    max_age = pending.params.get("max_age")
    return max_age is not None and clock.now() - sess.auth_time > int(max_age)


def _refuse(grant: Any, req: OAuth2Request, pending: PendingAuthorization,
            error: OAuth2Error) -> Step:
    """Send ``error`` back to the app (its redirect URI is trusted by now)."""
    error.redirect_uri, error.state = grant.redirect_uri, pending.params.get("state")
    store.interaction.drop_pending(pending)
    return _error_step(req, error)


def _sign_in_step(rid: str) -> Step:
    return Step("login", location="/login?" + urlencode(
        {"next": f"/authorize/continue?req={rid}"}))


@store.transaction()
def signed_out(rid: str) -> Step:
    """/authorize/continue without a signed-in user: the sign-in page, or for
    ``prompt=none`` (OIDC Core §3.1.2.6) ``login_required`` sent back to the app."""
    pending = store.interaction.get_pending(rid)
    if pending is not None and "none" in _prompts(pending):
        try:
            grant, req = _revalidate(pending)
        except OAuth2Error as error:
            store.interaction.drop_pending(pending)
            return _error_step(_parked_request(pending.params), error)
        return _refuse(grant, req, pending, LoginRequiredError())
    return _sign_in_step(rid)


@store.transaction()
def resume(rid: str, user: User, sess: UserSession) -> Step:
    """Continue a parked request for the signed-in user."""
    pending = store.interaction.get_pending(rid)
    if pending is None:
        return Step("error_page", title="This sign-in request has expired",
                    message="Go back to the app and start again.")
    try:
        grant, req = _revalidate(pending)
    except OAuth2Error as error:
        store.interaction.drop_pending(pending)
        return _error_step(_parked_request(pending.params), error)
    prompts = _prompts(pending)
    if pending.user_id is None and _needs_fresh_sign_in(pending, sess):
        if "none" in prompts:
            return _refuse(grant, req, pending, LoginRequiredError())
        return _sign_in_step(rid)
    if not store.interaction.bind_pending(pending, user.id):
        return Step("error_page", title="This request belongs to another sign-in",
                    message="Go back to the app and start again.", status=403)
    try:
        scopes = _allowed(grant, user)
        ctx = _context(grant, user, pending, scopes)
        items = _offered(grant, scopes) if not isinstance(ctx, Step) else []
    except OAuth2Error as error:
        return _refuse(grant, req, pending, error)
    if isinstance(ctx, Step):
        if "none" in prompts:
            return _refuse(grant, req, pending, InteractionRequiredError(
                "A patient must be chosen, which needs the user's interaction"))
        return ctx
    consent = store.interaction.get_consent(user.id, pending.client_id)
    if _pre_approved(grant, user):
        granted = _with_launch(grant, granted_from_choice(items, [i.value for i in items]))
        audit.record("consent.pre_approved", user_id=user.id, client_id=pending.client_id,
                     scope=format_scopes(granted))
        return _issue(grant, req, pending, user, sess, granted, ctx)
    remembered = _remembered(consent, items, prompts)
    if remembered:
        return _issue(grant, req, pending, user, sess, _with_launch(grant, remembered), ctx)
    if "none" in prompts:
        return _refuse(grant, req, pending, ConsentRequiredError())
    return Step("consent", items=items, client=grant.client.row, pending=pending,
                redirect_host=display_host(grant.redirect_uri),
                ticked=previously_chosen(items, consent.requested, consent.scope)
                if consent is not None else None,
                previous_at=consent.updated_at if consent is not None else None)


def _pre_approved(grant: Any, user: User) -> bool:
    """An administrator pre-approved this app for clinicians' EHR launches: no consent page
    (never for patients: ONC (g)(10) — the patient chooses every time)."""
    return (user.role == CLINICIAN and grant.request.smart.launch is not None
            and bool(getattr(grant.client.row, "pre_approved", False)))


def _remembered(consent: Any, items: list[ConsentItem], prompts: set[str]) -> list[Scope]:
    """The scopes an earlier consent grants without a page, or [] to show the page.

    A person chooses on every interactive authorization (ONC (g)(10): full, then limited
    access with the same app); an earlier choice is reused without a page only for
    ``prompt=none``, and only when it covers this request. A clinician's page is skipped
    only for an app an administrator pre-approved for EHR launches (:func:`_pre_approved`).
    """
    if consent is None or "none" not in prompts:
        return []
    if not {i.value for i in items} <= set(consent.requested.split()):
        return []
    return granted_from_choice(items, previously_chosen(items, consent.requested,
                                                        consent.scope))


@store.transaction()
def choose_patient(rid: str, user: User, patient_id: str) -> Step | None:
    """Record the picker's choice; an error Step when it is not a known patient."""
    refused = picker_check(rid, user)
    if refused is not None:
        return refused
    pending = store.interaction.get_pending(rid)
    if not isinstance(patient_id, str) or store.registry.get_patient(patient_id) is None:
        return Step("error_page", title="Unknown patient",
                    message="Choose a patient from the list.")
    pending.patient = patient_id
    return None


@store.transaction()
def decide(rid: str, user: User, sess: UserSession, decision: str, chosen: list[str]) -> Step:
    """The consent form was submitted: allow (with the ticked scopes) or deny."""
    pending = store.interaction.get_pending(rid)
    if pending is None or pending.user_id != user.id:
        return Step("error_page", title="This sign-in request has expired",
                    message="Go back to the app and start again.")
    try:
        grant, req = _revalidate(pending)
    except OAuth2Error as error:
        store.interaction.drop_pending(pending)
        return _error_step(_parked_request(pending.params), error)
    try:
        scopes = _allowed(grant, user)
        ctx = _context(grant, user, pending, scopes)
        items = _offered(grant, scopes) if not isinstance(ctx, Step) else []
    except OAuth2Error as error:
        error.redirect_uri, error.state = grant.redirect_uri, pending.params.get("state")
        store.interaction.drop_pending(pending)
        return _error_step(req, error)
    if isinstance(ctx, Step):
        return ctx
    granted = granted_from_choice(items, chosen) if decision == "allow" else []
    granted = _with_launch(grant, granted)
    if not granted:
        audit.record("consent.denied", user_id=user.id, client_id=pending.client_id)
        store.interaction.drop_pending(pending)
        resp = oauth_server.current().create_authorization_response(
            request=req, grant_user=None, grant=grant)
        return Step("redirect", location=resp.headers["Location"])
    store.interaction.save_consent(user.id, pending.client_id, format_scopes(granted),
                                   " ".join(i.value for i in items))
    audit.record("consent.granted", user_id=user.id, client_id=pending.client_id,
                 scope=format_scopes(granted))
    return _issue(grant, req, pending, user, sess, granted, ctx)


def _issue(grant: Any, req: OAuth2Request, pending: PendingAuthorization, user: User,
           sess: UserSession, granted: list[Scope], ctx: dict[str, Any]) -> Step:
    if "patient" in ctx and not _needs_patient(granted) and grant.request.smart.launch is None:
        ctx = {k: v for k, v in ctx.items() if k != "patient"}
    who = Authorization(user=user, session_id=sess.id, auth_time=sess.auth_time,
                        scope=format_scopes(granted), context=ctx,
                        launch_row=grant.request.smart.launch)
    resp = oauth_server.current().create_authorization_response(request=req, grant_user=who,
                                                                grant=grant)
    store.interaction.drop_pending(pending)
    return Step("redirect", location=resp.headers["Location"])
