"""TOTP enrolment right after the password, for users who must have a second factor."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, url_for

from authserver.auth import session as auth
from authserver.auth import totp
from authserver.views.login import second_factor_step

bp = Blueprint("enrol", __name__)


@bp.route("/login/enrol", methods=["GET", "POST"])
def enrol():
    step = second_factor_step(enrolled=False)
    if not isinstance(step, tuple):
        return step
    user, nxt = step
    secret = auth.enrolment_secret(user)
    uri = totp.provisioning_uri(secret, user.username, current_app.config["TOTP_ISSUER"])
    if request.method == "POST":
        if auth.confirm_enrolment(user, request.form.get("code", "")):
            auth.sign_in(user)
            return redirect(nxt, 303)
        if user.has_totp:  # enrolled meanwhile from another page: use the TOTP step
            return redirect(url_for("login.totp", next=nxt), 303)
        return render_template("enrol.html", secret=secret, qr=totp.qr_svg(uri), next=nxt,
                               error="That code is not right. Try the current one."), 401
    return render_template("enrol.html", secret=secret, qr=totp.qr_svg(uri), next=nxt,
                           error=None)
