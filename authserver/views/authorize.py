"""/authorize (GET and POST, ``authorize-post``) and its continuation pages."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for

from authserver.auth import session as auth
from authserver.extensions import csrf
from authserver.services import authorize_flow as flow
from authserver.services import authorize_steps as steps
from authserver.smart.wording import N_
from authserver.web import error_page

bp = Blueprint("authorize", __name__)


def _render(step: steps.Step, *, post: bool = False):
    match step:
        case steps.Redirect(location=location):
            # RFC 9700 §4.12: 303 after a POST, so the browser does not re-POST credentials.
            return redirect(location, 303 if post else 302)
        case steps.ErrorPage(title=title, message=message, status=status, app=app):
            return error_page(title, message, status, app=app)
        case steps.SignIn(location=location):
            return redirect(location, 303)
        case steps.PickPatient(pending=pending):
            return redirect(url_for("picker.pick", req=pending.id), 303)
    return render_template("consent.html", step=step, client=step.client, items=step.items,
                           sections=_sections(step.items), req=step.pending.id,
                           redirect_host=step.redirect_host, ticked=step.ticked,
                           previous_at=step.previous_at,
                           links=_https_links(step.client.client_metadata))


#: The consent page's sections, in order, and the item groups each holds.
_SECTIONS = (("identity", ("identity",)), ("record", ("context", "data")),
             ("access", ("access",)))


def _sections(items: list) -> list[tuple[str, list]]:
    """(section, its whole-type and simple items) for the sections that have any; category
    items are shown beneath their parent by the template."""
    out = []
    for name, groups in _SECTIONS:
        kept = [i for i in items if i.group in groups and i.parent is None]
        if kept:
            out.append((name, kept))
    return out


def _https_links(metadata: dict) -> dict[str, str]:
    """The app's registered homepage, privacy policy and terms, where they are https
    (:func:`~authserver.services.authorize_steps.https_only`)."""
    names = {"client_uri": N_("About the app"), "policy_uri": N_("Privacy policy"),
             "tos_uri": N_("Terms of use")}  # translated by the template
    links = {label: steps.https_only(metadata.get(key)) for key, label in names.items()}
    return {label: uri for label, uri in links.items() if uri}


@bp.route("/authorize", methods=["GET", "POST"])
@csrf.exempt  # apps POST here cross-site (authorize-post); nothing is decided on this request
def authorize():
    return _render(flow.begin(request.values, auth.current_session()),
                   post=request.method == "POST")


@bp.route("/authorize/continue", methods=["GET", "POST"])
def resume():
    rid = request.values.get("req", "")
    user, sess = auth.current_user(), auth.current_session()
    if user is None:
        return _render(flow.signed_out(rid))
    if request.method == "GET":
        return _render(flow.resume(rid, user, sess))
    step = flow.decide(rid, user, sess, request.form.get("decision", ""),
                       request.form.getlist("scope"),
                       empty_confirmed=request.form.get("empty_confirmed") == "1")
    return _render(step, post=True)
