"""Passwords a person sets: ``/account/password`` (signed in: ``current_password``,
``new_password``, ``new_password_confirm``), ``/forgot`` (``username``: a link by e-mail) and
``/reset/<token>`` (``password``, ``password_confirm``). The service is
:mod:`authserver.services.passwords`; the token is single use and never logged.

Each POST is limited per client address like sign-in (LOGIN_RATE_LIMIT). A reset never
signs anyone in: afterwards the person signs in as usual, TOTP included.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)

from authserver.auth import session as auth
from authserver.extensions import limiter
from authserver.i18n import gettext
from authserver.services import passwords

bp = Blueprint("password", __name__)


@bp.record_once
def _redact_logs(state) -> None:  # state: Flask's BlueprintSetupState, unused
    passwords.redact_reset_links_in_logs()


@bp.after_request
def _no_store(resp: Response) -> Response:
    # Reached through a one-time link, or holding a password form: no cache may keep it.
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _form(template: str, exc: passwords.PasswordError | None = None, **context):
    page = render_template(template, field=exc.field if exc else None,
                           error=str(exc) if exc else None, **context)
    return page, exc.status if exc else 200


@bp.route("/account/password", methods=["GET", "POST"])
@limiter.limit(_limit, methods=["POST"])
def change():
    user, row = auth.current_user(), auth.current_session()
    if user is None or row is None:
        return redirect(url_for("login.login", next=url_for("password.change")), 303)
    if request.method == "GET":
        return _form("password_change.html", user=user)
    f = request.form
    try:
        passwords.change(user, row.id, f.get("current_password", ""),
                         f.get("new_password", ""), f.get("new_password_confirm", ""))
    except passwords.PasswordError as exc:
        return _form("password_change.html", exc, user=user)
    flash(gettext("Your password was changed. Your other sign-ins were ended."))
    return redirect(url_for("account.account"), 303)


@bp.route("/forgot", methods=["GET", "POST"])
@limiter.limit(_limit, methods=["POST"])
def forgot():
    nxt = auth.safe_next(request.values.get("next"))
    if not passwords.reset_available():
        return render_template("forgot.html", next=nxt, unavailable=True)
    if request.method == "GET":
        return _form("forgot.html", next=nxt)
    username = request.form.get("username", "").strip()
    if not username:
        missing = passwords.PasswordError("username", gettext("Enter your username."))
        return _form("forgot.html", missing, next=nxt)
    passwords.request_reset(username)
    return render_template("forgot_sent.html", next=nxt,
                           minutes=current_app.config["PASSWORD_RESET_LIFETIME"] // 60)


def _expired():
    return render_template("password_link_expired.html"), 400


@bp.route("/reset/<token>", methods=["GET", "POST"])
@limiter.limit(_limit, methods=["POST"])
def reset(token: str):
    user = passwords.reset_user(token)
    if user is None:
        return _expired()
    if request.method == "GET":
        return _form("password_reset.html", username=user.username)
    try:
        passwords.reset(token, request.form.get("password", ""),
                        request.form.get("password_confirm", ""))
    except passwords.ResetLinkInvalid:
        return _expired()
    except passwords.PasswordError as exc:
        return _form("password_reset.html", exc, username=user.username)
    return redirect(url_for("password.reset_done"), 303)


@bp.get("/reset/done")
def reset_done():
    return render_template("password_reset_done.html")
