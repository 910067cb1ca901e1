"""TOTP enrolment right after the password, for users who must have a second factor; the
page (:func:`enrolment_page`) is shared with the account page's "turn on" and "replace"."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, url_for

from authserver.auth import session as auth
from authserver.auth import totp
from authserver.i18n import lazy_gettext
from authserver.views.login import second_factor_step

bp = Blueprint("enrol", __name__)

_WRONG = lazy_gettext("That code is not right. Try the current one.")


def enrolment_page(user: Any, **context: Any) -> str:
    """enrol.html for the secret being enrolled in this session: the QR code, the key in
    groups of four, and what an app needs to be set up by hand."""
    secret = auth.enrolment_secret(user)
    issuer = current_app.config["TOTP_ISSUER"]
    uri = totp.provisioning_uri(secret, user.username, issuer)
    groups = [secret[i:i + 4] for i in range(0, len(secret), 4)]
    context.setdefault("error", None)
    return render_template("enrol.html", secret=secret, groups=groups, qr=totp.qr_svg(uri),
                           issuer=issuer, account=user.username, digits=totp.DIGITS,
                           period=totp.STEP_SECONDS, **context)


def codes_page(codes: list[str], nxt: str, **context: Any):
    """The new recovery codes, shown this once (never cached)."""
    return render_template("recovery_codes.html", codes=codes, next=nxt, **context), 200, {
        "Cache-Control": "no-store"}


@bp.route("/login/enrol", methods=["GET", "POST"])
def enrol():
    step = second_factor_step(enrolled=False)
    if not isinstance(step, tuple):
        return step
    user, nxt = step
    page = {"next": nxt, "username": user.username}
    if request.method == "POST":
        codes = auth.confirm_enrolment(user, request.form.get("code", ""))
        if codes is not None:
            auth.sign_in(user)
            return codes_page(codes, nxt)
        if user.has_totp:  # enrolled meanwhile from another page: use the TOTP step
            return redirect(url_for("login.totp", next=nxt), 303)
        return enrolment_page(user, error=str(_WRONG), error_field="code", **page), 401
    return enrolment_page(user, **page)
