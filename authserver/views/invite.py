"""Invitations: ``/invite/<token>`` (the invited person chooses a username and password) and
``POST /admin/invite`` (an administrator sends one). The service is
:mod:`authserver.services.accounts`; the token is single use and never logged.

OWASP Forgot Password Cheat Sheet (the same shape of link):
https://cheatsheetseries.owasp.org/cheatsheets/Forgot_Password_Cheat_Sheet.html
"""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, request, url_for

from authserver.i18n import gettext, said
from authserver.services import accounts
from authserver.smart.roles import Role
from authserver.views.portal import _requires, render_console
from authserver.web import error_page

bp = Blueprint("invite", __name__)


@bp.record_once
def _redact_logs(state) -> None:  # state: Flask's BlueprintSetupState, unused
    accounts.redact_invite_links_in_logs()


@bp.after_request
def _no_store(resp: Response) -> Response:
    # The page is reached through a one-time link: no cache may keep it.
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _invalid():
    return error_page(gettext("Invitation not valid"), str(accounts.InvalidInvitation()), 400)


def _form(info: dict, error: str | None = None, username: str = ""):
    return render_template("invite.html", invitation=info, error=error,
                           username=username), 400 if error else 200


@bp.route("/invite/<token>", methods=["GET", "POST"])
def accept(token: str):
    row = accounts.find(token)
    if row is None:
        return _invalid()
    info = accounts.describe(row)
    if request.method == "GET":
        return _form(info)
    username = request.form.get("username", "").strip()
    if request.form.get("password", "") != request.form.get("password_confirm", ""):
        return _form(info, gettext("The two passwords are not the same."), username)
    try:
        accounts.accept(token, username, request.form.get("password", ""))
    except accounts.InvalidInvitation:
        return _invalid()
    except accounts.InvitationError as exc:
        return _form(info, said(exc), username)
    return redirect(url_for("login.login", invited=1), 303)


def _console(user, *, error: str | None = None, invited: dict | None = None):
    return render_console(user, error=error, invited=invited)[0]


@bp.post("/admin/invite")
@_requires(Role.ADMIN)
def send(user):  # the signed-in admin, from _requires
    f = request.form
    try:
        invited = accounts.invite(f.get("email", ""), f.get("role", ""),
                                  fhir_user=f.get("fhir_user") or None,
                                  name=f.get("name") or None, invited_by=user.id)
    except accounts.InvitationError as exc:
        return _console(user, error=said(exc)), exc.status
    return _console(user, invited=invited)
