"""/account/two-step/...: a signed-in person's two-step sign-in (turn it on, replace the
authenticator app, turn it off where the role allows, new recovery codes). Every change is
a POST with the current password (see :mod:`authserver.services.two_step`); the account
page's section (templates/account/_two_step.html) links here."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from authserver.auth import session as auth
from authserver.i18n import gettext, lazy_gettext
from authserver.services import two_step
from authserver.views.enrol import codes_page, enrolment_page

bp = Blueprint("two_step", __name__)

_ACCOUNT = "/account"


@bp.app_template_global("two_step_summary")
def _summary(user: Any) -> dict[str, Any]:
    return two_step.summary(user) if user is not None else {}


def _to_sign_in():
    return redirect(url_for("login.login", next=request.path), 303)


def _form(name: str) -> str:
    return request.form.get(name, "")


def _setup_page(user: Any, **context: Any) -> str:
    replacing = user.has_totp
    return enrolment_page(
        user, next=_ACCOUNT, action=url_for("two_step.setup"), ask_password=True,
        cancel=_ACCOUNT,
        heading=gettext("Replace your authenticator app") if replacing else
        gettext("Turn on two-step sign-in"),
        intro=gettext("Set up your new app below. Your old app stops working once you "
                      "confirm; your recovery codes stay as they are.") if replacing else
        gettext("Signing in will also ask for a 6-digit code from an authenticator app on "
                "your phone, so that your password alone is not enough."), **context)


@bp.route("/account/two-step/setup", methods=["GET", "POST"])
def setup():
    user = auth.current_user()
    if user is None:
        return _to_sign_in()
    if request.method == "GET":
        return _setup_page(user)
    replacing = user.has_totp
    try:
        if replacing:
            two_step.replace(user, _form("code"), _form("current_password"))
        else:
            codes = two_step.turn_on(user, _form("code"), _form("current_password"))
    except two_step.TwoStepError as err:
        return _setup_page(user, error=str(err), error_field=err.field), err.status
    if replacing:
        flash(gettext("Your new authenticator app is set up. The old one no longer works."))
        return redirect(_ACCOUNT, 303)
    return codes_page(codes, _ACCOUNT)


_CONFIRM = {
    "remove": {"heading": lazy_gettext("Turn off two-step sign-in"),
               "button": lazy_gettext("Turn off"),
               "intro": lazy_gettext("Signing in will then ask only for your password, and "
                                     "your recovery codes will stop working. Type your "
                                     "password to confirm.")},
    "recovery_codes": {"heading": lazy_gettext("Make new recovery codes"),
                       "button": lazy_gettext("Make new codes"),
                       "intro": lazy_gettext("You will get 10 new codes, shown once. Every "
                                             "code you have now, used or not, stops working. "
                                             "Type your password to confirm.")},
}


def _confirm_page(which: str, **context: Any) -> str:
    return render_template("account_two_step.html", action=url_for(f"two_step.{which}"),
                           **_CONFIRM[which], **context)


@bp.route("/account/two-step/remove", methods=["GET", "POST"])
def remove():
    user = auth.current_user()
    if user is None:
        return _to_sign_in()
    if request.method == "GET":
        return _confirm_page("remove")
    try:
        two_step.remove(user, _form("current_password"))
    except two_step.TwoStepError as err:
        return _confirm_page("remove", error=str(err), error_field=err.field), err.status
    flash(gettext("Two-step sign-in is off."))
    return redirect(_ACCOUNT, 303)


@bp.route("/account/two-step/recovery-codes", methods=["GET", "POST"])
def recovery_codes():
    user = auth.current_user()
    if user is None:
        return _to_sign_in()
    if request.method == "GET":
        return _confirm_page("recovery_codes")
    try:
        codes = two_step.regenerate_codes(user, _form("current_password"))
    except two_step.TwoStepError as err:
        return _confirm_page("recovery_codes", error=str(err),
                             error_field=err.field), err.status
    return codes_page(codes, _ACCOUNT, replaced=True)
