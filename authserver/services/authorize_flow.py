"""The authorization endpoint's flow: validate, park, sign in, establish context, consent.

RFC 6749 §4.1.2.1: an unknown ``client_id`` or unregistered ``redirect_uri`` is shown as an
error page and never redirected; every other error is redirected with ``error``,
``error_description``, ``state`` and ``iss`` (RFC 9207). A request that arrives by a
cross-site POST needs no cookie: it is kept server side and continued by its handle.

Each public function is one unit of work and answers a typed
:mod:`~authserver.services.authorize_steps` step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.errors import AccessDeniedError, InvalidRequestError
from authlib.oidc.core.errors import (
    ConsentRequiredError,
    InteractionRequiredError,
    LoginRequiredError,
)
from flask import current_app

from authserver import audit, clock, store
from authserver.i18n import gettext
from authserver.oauth import server as oauth_server
from authserver.oauth.ceilings import ceiling_for
from authserver.oauth.rfc6749 import Authorization
from authserver.services.authorize_request import (
    KNOWN_PARAMS,
    Parked,
    load,
    park,
    session_mark,
)
from authserver.services.authorize_steps import (
    EXPIRED,
    AppFace,
    Consent,
    ErrorPage,
    Offer,
    PickPatient,
    Redirect,
    SignIn,
    Step,
    display_host,
)
from authserver.smart.ceiling import apply_ceiling
from authserver.smart.consent import (
    ConsentItem,
    consent_items,
    granted_from_choice,
    how_long,
    previously_chosen,
)
from authserver.smart.grammar import Scope, format_scopes
from authserver.smart.roles import Role

if TYPE_CHECKING:
    from authserver.models import PendingAuthorization, User, UserSession

__all__ = ["begin", "resume", "signed_out", "decide", "choose_patient", "picker_check",
           "KNOWN_PARAMS", "app_signing_in"]

#: Where the sign-in page sends a person back to continue a parked request.
CONTINUE_PATH = "/authorize/continue"

@store.transaction()
def begin(values: Any, sess: UserSession | None = None) -> Step:
    """A new /authorize request (GET query or POST form): validate and park it. ``sess`` is
    the sign-in the browser already has, if any."""
    rid = park(values, note=session_mark(sess))
    return SignIn(f"{CONTINUE_PATH}?req={rid}") if isinstance(rid, str) else rid


def _app_of(client_id: str) -> AppFace | None:
    client = oauth_server.current().query_client(client_id)
    return AppFace.of(client.row) if client is not None else None


def app_signing_in(next_url: str) -> AppFace | None:
    """The app a sign-in is for, when its ``next`` continues a parked request
    (``/authorize/continue?req=<handle>``): None for any other ``next``, an unknown or
    expired handle, or an app disabled since. The handle is only looked up (read only)."""
    try:
        parts = urlsplit(next_url)
    except ValueError:
        return None
    handles = parse_qs(parts.query).get("req") or [None]
    if parts.path != CONTINUE_PATH or parts.netloc or len(handles) != 1:
        return None
    pending = store.interaction.get_pending(handles[0])
    return _app_of(pending.client_id) if pending is not None else None


def _needs_patient(scopes: list[Scope]) -> bool:
    return any(s.raw.startswith("launch/patient") or
               (s.resource is not None and s.resource.context == "patient") for s in scopes)


def _own_patient(user: User) -> str | None:
    if user.fhir_user and user.fhir_user.startswith("Patient/"):
        return user.fhir_user.split("/", 1)[1]
    return None


def _launch_context(launch: Any, user: User) -> dict[str, Any]:
    """An EHR launch's context, for a user it may serve: the user it was made for (when
    bound), a clinician, or the patient whose record it opens."""
    if launch.user_id is not None and launch.user_id != user.id:
        raise InvalidRequestError("'launch' was made for another user")
    if user.role == Role.PATIENT:
        if launch.patient != _own_patient(user):
            raise AccessDeniedError("This launch is for another patient's record")
    elif user.role != Role.CLINICIAN:
        raise AccessDeniedError("Only clinicians can use an EHR launch")
    ctx = {"patient": launch.patient, "encounter": launch.encounter,
           "fhirContext": launch.fhir_context, "intent": launch.intent,
           "need_patient_banner": bool(launch.need_patient_banner),
           "smart_style_url": launch.smart_style_url, "tenant": launch.tenant}
    return {k: v for k, v in ctx.items() if v is not None}


def _context(parked: Parked, user: User, scopes: list[Scope]) -> dict[str, Any] | Step:
    """The launch context for the (ceiling-narrowed) ``scopes``, or the patient picker.

    Only clinicians choose a patient (the picker) or use an EHR launch for any patient; a
    patient gets their own record only, in a standalone launch and in an EHR launch alike.
    """
    if parked.launch is not None:
        return _launch_context(parked.launch, user)
    if not _needs_patient(scopes):
        return {}
    if user.role == Role.PATIENT:
        own = _own_patient(user)
        if own is None:
            raise AccessDeniedError("There is no patient record for this account")
        return {"patient": own}
    if user.role != Role.CLINICIAN:
        raise AccessDeniedError("Only clinicians can choose a patient")
    if parked.pending.patient:
        return {"patient": parked.pending.patient}
    return PickPatient(parked.pending, parked.grant.client.row)


def _allowed(parked: Parked, user: User) -> list[Scope]:
    """The requested scopes the app may have, narrowed to what ``user`` may see (their scope
    ceiling, :mod:`authserver.oauth.ceilings`). Raises ``access_denied`` when nothing but launch
    context would be left."""
    scopes = apply_ceiling(parked.grant.request.smart.scopes, ceiling_for(user))
    if all(s.kind in ("launch", "launch_context") for s in scopes):
        # RFC 6749 §3.3: the server may grant less than requested; with nothing left to
        # grant, the authorization server denies the request (§4.1.2.1 access_denied).
        raise AccessDeniedError("This account may not grant any of the requested scopes")
    return scopes


def _offered(parked: Parked, scopes: list[Scope], patient_name: str | None
             ) -> list[ConsentItem]:
    if parked.launch is None:
        # `launch/encounter` in a standalone launch: DROPPED, not refused. SMART
        # (scopes-and-launch-context, "Standalone apps"): "The EHR SHOULD provide the
        # requested context ... unless otherwise noted" (a SHOULD; we have no encounter
        # picker and do not advertise context-standalone-encounter), and RFC 6749 §3.3 lets
        # the server grant fewer scopes than requested, saying so in the token response's
        # `scope`. Refusing would break apps that ask for it only in case it is available.
        scopes = [s for s in scopes if s.raw != "launch/encounter"]
    return consent_items(scopes, patient_name, gettext)


def _offer(parked: Parked, user: User) -> Offer | Step:
    """What ``user`` may grant, or the patient picker; raises OAuth2Error."""
    scopes = _allowed(parked, user)
    ctx = _context(parked, user, scopes)
    if not isinstance(ctx, dict):
        return ctx
    if user.role == Role.PATIENT or "patient" not in ctx:
        return Offer(ctx, _offered(parked, scopes, None))
    # A clinician shares someone else's record: the page names them, never "your".
    patient = store.registry.get_patient(ctx["patient"])
    name = f"{patient.given} {patient.family}".strip() if patient else gettext("the patient")
    return Offer(ctx, _offered(parked, scopes, name), patient)


def _with_launch(parked: Parked, granted: list[Scope]) -> list[Scope]:
    """SMART EHR launch: the granted scopes repeat `launch` (the context the EHR already
    decided on is not the user's to untick), in front, once anything at all is granted."""
    if parked.launch is None or not granted:
        return granted
    launch = [s for s in parked.grant.request.smart.scopes if s.kind == "launch"]
    return launch + [s for s in granted if s.kind != "launch"]


def _issue(parked: Parked, user: User, sess: UserSession, granted: list[Scope],
           ctx: dict[str, Any]) -> Step:
    """The code, back to the app (RFC 6749 §4.1.2); the request ends."""
    if "patient" in ctx and not _needs_patient(granted) and parked.launch is None:
        ctx = {k: v for k, v in ctx.items() if k != "patient"}
    who = Authorization(user=user, session_id=sess.id, auth_time=sess.auth_time,
                        scope=format_scopes(granted), context=ctx, launch_row=parked.launch)
    resp = oauth_server.current().authorization_response(parked.grant, who)
    store.interaction.drop_pending(parked.pending)
    return Redirect(resp.headers["Location"])


def picker_check(rid: str, user: User) -> ErrorPage | None:
    """An error page unless ``user`` is a clinician continuing their own parked request:
    the registry is shown to no one else."""
    pending = store.interaction.get_pending(rid)
    if pending is None or pending.user_id != user.id:
        return EXPIRED
    if user.role != Role.CLINICIAN:
        return ErrorPage(gettext("Only clinicians can choose a patient"),
                         gettext("Go back to the app and start again."), 403,
                         app=_app_of(pending.client_id))
    return None


def _prompts(pending: PendingAuthorization) -> set[str]:
    return set(str(pending.params.get("prompt") or "").split())


def _needs_fresh_sign_in(pending: PendingAuthorization, sess: UserSession) -> bool:
    """OIDC Core §3.1.2.1: ``prompt=login`` (and ``select_account``, which we serve the
    same way) "SHOULD prompt the End-User for reauthentication"; ``max_age``: "If the
    elapsed time is greater than this value, the OP MUST attempt to actively re-authenticate
    the End-User"."""
    prompts = _prompts(pending)
    if prompts & {"login", "select_account"} and (
            sess.auth_time < pending.created_at or pending.note == session_mark(sess)):
        return True  # the sign-in is older than the request, or the one it arrived in
    max_age = pending.params.get("max_age")
    return max_age is not None and clock.now() - sess.auth_time > int(max_age)


def _sign_in_step(rid: str) -> Step:
    return SignIn("/login?" + urlencode({"next": f"{CONTINUE_PATH}?req={rid}"}))


@store.transaction()
def signed_out(rid: str) -> Step:
    """/authorize/continue without a signed-in user: the sign-in page, or for
    ``prompt=none`` (OIDC Core §3.1.2.6) ``login_required`` sent back to the app. A request
    that is unknown, expired or no longer valid says so first: nobody signs in (password and
    TOTP) only to be told the request was dead."""
    pending = store.interaction.get_pending(rid)
    if pending is None:
        return EXPIRED
    parked = load(pending)
    if not isinstance(parked, Parked):
        return parked
    if "none" in _prompts(pending):
        return parked.refuse(LoginRequiredError())
    return _sign_in_step(rid)


@store.transaction()
def resume(rid: str, user: User, sess: UserSession) -> Step:
    """Continue a parked request for the signed-in user."""
    pending = store.interaction.get_pending(rid)
    if pending is None:
        return EXPIRED
    parked = load(pending)
    if not isinstance(parked, Parked):
        return parked
    prompts = _prompts(pending)
    if pending.user_id is None and _needs_fresh_sign_in(pending, sess):
        return parked.refuse(LoginRequiredError()) if "none" in prompts else _sign_in_step(rid)
    if not store.interaction.bind_pending(pending, user.id):
        return ErrorPage(gettext("This request belongs to another sign-in"),
                         gettext("Go back to the app and start again."), 403,
                         app=AppFace.of(parked.grant.client.row))
    try:
        offer = _offer(parked, user)
    except OAuth2Error as error:
        return parked.refuse(error)
    if not isinstance(offer, Offer):
        if "none" in prompts:
            return parked.refuse(InteractionRequiredError(
                "A patient must be chosen, which needs the user's interaction"))
        return offer
    consent = store.interaction.get_consent(user.id, pending.client_id)
    return (_without_page(parked, user, sess, offer, consent, prompts)
            or _consent_page(parked, offer, user, consent))


def _without_page(parked: Parked, user: User, sess: UserSession, offer: Offer,
                  consent: Any, prompts: set[str]) -> Step | None:
    """The answer when no consent page is shown: an app pre-approved for clinicians' EHR
    launches, a remembered choice under ``prompt=none``, or ``consent_required``."""
    ctx, items = offer.ctx, offer.items
    if _pre_approved(parked, user):
        granted = _with_launch(parked, granted_from_choice(items, [i.value for i in items]))
        audit.record("consent.pre_approved", user_id=user.id,
                     client_id=parked.pending.client_id, scope=format_scopes(granted))
        return _issue(parked, user, sess, granted, ctx)
    remembered = _remembered(consent, items, prompts)
    if remembered:
        return _issue(parked, user, sess, _with_launch(parked, remembered), ctx)
    if "none" in prompts:
        return parked.refuse(ConsentRequiredError())
    return None


def _consent_page(parked: Parked, offer: Offer, user: User, consent: Any = None,
                  chosen: list[str] | None = None) -> Step:
    """The page, with the person's previous choice for this app pre-ticked and dated; or,
    with ``chosen``, shown again because Allow came with nothing ticked."""
    items, conf = offer.items, current_app.config
    ticked = chosen if chosen is not None else (
        previously_chosen(items, consent.requested, consent.scope) if consent else None)
    return Consent(items, parked.grant.client.row, parked.pending,
                   redirect_host=display_host(parked.grant.redirect_uri), ticked=ticked,
                   previous_at=consent.updated_at if consent is not None else None,
                   patient=offer.patient, signed_in_as=user.name or user.username,
                   lasts=how_long({i.value for i in items}, conf["ACCESS_TOKEN_LIFETIME"],
                                  conf["OFFLINE_REFRESH_LIFETIME"], gettext),
                   empty_choice=chosen is not None)


def _pre_approved(parked: Parked, user: User) -> bool:
    """An administrator pre-approved this app for clinicians' EHR launches: no consent page
    (never for patients: ONC (g)(10) — the patient chooses every time)."""
    return (user.role == Role.CLINICIAN and parked.launch is not None
            and bool(getattr(parked.grant.client.row, "pre_approved", False)))


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
def choose_patient(rid: str, user: User, patient_id: str) -> ErrorPage | None:
    """Record the picker's choice; an error page when it is not a known patient."""
    refused = picker_check(rid, user)
    if refused is not None:
        return refused
    pending = store.interaction.get_pending(rid)
    if not isinstance(patient_id, str) or store.registry.get_patient(patient_id) is None:
        return ErrorPage(gettext("Unknown patient"), gettext("Choose a patient from the list."))
    pending.patient = patient_id
    return None


@store.transaction()
def decide(rid: str, user: User, sess: UserSession, decision: str, chosen: list[str],
           empty_confirmed: bool = False) -> Step:
    """The consent form was submitted: allow (with the ticked scopes) or deny. Allow with
    nothing ticked shows the page once more, asking whether Deny was meant; submitted
    again so (``empty_confirmed``) it is a denial."""
    pending = store.interaction.get_pending(rid)
    if pending is None or pending.user_id != user.id:
        return EXPIRED
    parked = load(pending)
    if not isinstance(parked, Parked):
        return parked
    try:
        offer = _offer(parked, user)
    except OAuth2Error as error:
        return parked.refuse(error)
    if not isinstance(offer, Offer):
        return offer
    ctx, items = offer.ctx, offer.items
    granted = _with_launch(parked, granted_from_choice(items, chosen)
                           if decision == "allow" else [])
    if not granted and decision == "allow" and not empty_confirmed:
        return _consent_page(parked, offer, user, chosen=[])
    if not granted:
        audit.record("consent.denied", user_id=user.id, client_id=pending.client_id)
        store.interaction.drop_pending(pending)
        resp = oauth_server.current().authorization_response(parked.grant, None)
        return Redirect(resp.headers["Location"])
    store.interaction.save_consent(user.id, pending.client_id, format_scopes(granted),
                                   " ".join(i.value for i in items))
    audit.record("consent.granted", user_id=user.id, client_id=pending.client_id,
                 scope=format_scopes(granted))
    return _issue(parked, user, sess, granted, ctx)
