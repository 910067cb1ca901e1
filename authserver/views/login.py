"""Sign-in (password, then TOTP where enrolled) and sign-out."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for

from authserver.auth import session as auth
from authserver.extensions import limiter

bp = Blueprint("login", __name__)

_FAILED = "Wrong username or password."


def _login_limit() -> str:
    from flask import current_app

    return current_app.config["LOGIN_RATE_LIMIT"]


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login():
    nxt = auth.safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("login.html", next=nxt, error=None)
    user = auth.check_password(request.form.get("username", ""), request.form.get("password", ""))
    if user is None:
        return render_template("login.html", next=nxt, error=_FAILED,
                               username=request.form.get("username", "")), 401
    if user.has_totp or user.role in ("clinician", "admin"):
        auth.begin_second_factor(user)
        return redirect(url_for("login.totp", next=nxt), 303)
    auth.sign_in(user)
    return redirect(nxt, 303)


@bp.route("/login/totp", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def totp():
    nxt = auth.safe_next(request.values.get("next"))
    user = auth.pending_user()
    if user is None:
        return redirect(url_for("login.login", next=nxt), 303)
    if not user.has_totp:
        return redirect(url_for("enrol.enrol", next=nxt), 303)
    if request.method == "GET":
        return render_template("totp.html", next=nxt, error=None)
    if not auth.verify_totp(user, request.form.get("code", "")):
        if auth.pending_user() is None:  # too many wrong codes: start over
            return redirect(url_for("login.login", next=nxt, restarted=1), 303)
        return render_template("totp.html", next=nxt, error="That code is not right."), 401
    auth.sign_in(user)
    return redirect(nxt, 303)


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    if request.method == "GET":
        return render_template("logout.html")
    auth.sign_out()
    return redirect(url_for("login.login"), 303)
