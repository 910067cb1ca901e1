"""/authorize (GET and POST, ``authorize-post``) and its continuation pages."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for

from authserver.auth import session as auth
from authserver.extensions import csrf
from authserver.services import authorize_flow as flow
from authserver.services import authorize_steps as steps
from authserver.smart.consent import describe
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
    groups = {}
    for item in step.items:
        groups.setdefault(item.group, []).append(item)
    return render_template("consent.html", client=step.client, items=step.items,
                           groups=groups, req=step.pending.id, describe=describe,
                           redirect_host=step.redirect_host, ticked=step.ticked,
                           previous_at=step.previous_at)


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
                       request.form.getlist("scope"))
    return _render(step, post=True)
