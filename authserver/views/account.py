"""/account: the signed-in user's page, a page of sections (templates/account/): connected
apps (what each may see, "Change", "Revoke access") and where the user is signed in ("Sign
out everywhere else"). Other areas add their own sections to account.html."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, flash, redirect, render_template, request, url_for
from markupsafe import Markup
from werkzeug.wrappers import Response

from authserver.auth import session as auth
from authserver.i18n import format_day, format_when, gettext, lazy_gettext, ngettext
from authserver.services.connected_apps import (
    Change,
    change_app,
    change_form,
    connected_app,
    connected_apps,
    revoke_app,
)
from authserver.services.sessions import end_other_sessions, signed_in_sessions
from authserver.web import error_page

bp = Blueprint("account", __name__)

REVOKED = lazy_gettext("Access revoked. The app can no longer use your data.")
_CHANGED = {
    Change.NARROWED: lazy_gettext("Saved. The app can now see only what you kept; access it "
                                  "already had to the rest has ended."),
    Change.UNCHANGED: lazy_gettext("Nothing changed."),
    Change.REVOKED: REVOKED,
}


def _not_found() -> tuple[str, str]:
    return (gettext("App not found"), gettext("This app is not connected to your account. Go "
                                              "back to your account page to see the apps that "
                                              "are."))


@bp.app_template_filter("when")
def _when(ts: int | None) -> str:
    return format_when(ts)


@bp.app_template_filter("time_tag")
def _time_tag(ts: int | None) -> Markup | str:
    """``when`` inside ``<time datetime="…Z">``, for a script that shows local time."""
    if not ts:
        return "—"
    iso = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Markup('<time datetime="{}">{}</time>').format(iso, _when(ts))


@bp.app_template_filter("day")
def _day(ts: int | None) -> str:
    """A date as people write it: "3 December 2026" (UTC), in the page's language."""
    return format_day(ts)


def _to_sign_in() -> Response:
    return redirect(url_for("login.login", next="/account"), 303)


def _home(anchor: str = "") -> Response:
    return redirect(url_for("account.account") + anchor, 303)


@bp.get("/account")
def account():
    user, sess = auth.current_user(), auth.current_session()
    if user is None or sess is None:
        return _to_sign_in()
    return render_template("account.html", user=user, apps=connected_apps(user.id),
                           sessions=signed_in_sessions(user.id, sess.id))


@bp.post("/account/sessions/end-others")
def end_others():
    user, sess = auth.current_user(), auth.current_session()
    if user is None or sess is None:
        return _to_sign_in()
    ended = end_other_sessions(user.id, sess.id)
    flash(ngettext("Signed out of %(num)s other session.", "Signed out of %(num)s other "
                   "sessions.", ended) if ended else gettext("You were not signed in anywhere "
                                                             "else."))
    return _home("#sessions")


@bp.get("/account/apps/change")
def change():
    user = auth.current_user()
    if user is None:
        return _to_sign_in()
    form = change_form(user.id, request.args.get("client_id"))
    if form is None:
        return error_page(*_not_found(), 404)
    return render_template("account_change.html", client=form.app, items=form.items,
                           ticked=form.ticked)


@bp.post("/account/apps/change")
def change_post():
    user = auth.current_user()
    if user is None:
        return _to_sign_in()
    outcome = change_app(user.id, request.form.get("client_id"), request.form.getlist("scope"))
    if outcome is Change.UNKNOWN:
        return error_page(*_not_found(), 404)
    flash(str(_CHANGED[outcome]))
    return _home("#connected-apps")


@bp.get("/account/revoke")
def confirm_revoke():
    """The confirmation step: a page whose form POSTs to /account/revoke."""
    user = auth.current_user()
    if user is None:
        return _to_sign_in()
    app = connected_app(user.id, request.args.get("client_id"))
    if app is None:
        return error_page(*_not_found(), 404)
    return render_template("account_revoke.html", client=app)


@bp.post("/account/revoke")
def revoke():
    user = auth.current_user()
    if user is None:
        return _to_sign_in()
    if revoke_app(user.id, request.form.get("client_id", "")):
        flash(str(REVOKED))
    return _home()
