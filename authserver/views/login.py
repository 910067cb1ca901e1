"""Sign-in (password, then TOTP where enrolled) and sign-out.

Three limits stand in front of a guesser (OWASP Authentication Cheat Sheet, "Protect
against automated attacks"), all counted where every worker and instance sees them:
LOGIN_RATE_LIMIT per client address on both steps (Flask-Limiter: 429), wrong passwords per
username (LOGIN_ACCOUNT_RATE_LIMIT: 429, even with the right password, the same for a
username no account has) and wrong TOTP codes per account across sign-ins (the second step
locks; see :func:`authserver.auth.session.verify_totp`).
"""

from __future__ import annotations

import math
import time
from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from authserver import clock
from authserver.auth import recovery_codes
from authserver.auth import session as auth
from authserver.extensions import limiter
from authserver.i18n import lazy_gettext
from authserver.services import authorize_flow as flow
from authserver.services import notices
from authserver.web import wait_words

bp = Blueprint("login", __name__)

_FAILED = lazy_gettext("Wrong username or password.")
_PASSWORD_LOCKED = lazy_gettext("Too many failed sign-ins with this username, so sign-in "
                                "with it is paused. %(wait)s.")
_WRONG_CODE = lazy_gettext("That code is not right.")
_WRONG_RECOVERY_CODE = lazy_gettext("That recovery code is not right, or it has been used "
                                    "already. Each code works once.")
_TOTP_LOCKED = lazy_gettext("Too many wrong codes for this account. The verification step is "
                            "locked for about %(minutes)s minutes (until %(until)s UTC); no "
                            "code is accepted until then.")


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _minutes(until: float) -> tuple[int, int]:
    """(whole minutes left, rounded up; seconds left, for Retry-After)."""
    left = max(1, math.ceil(until - clock.precise()))
    return math.ceil(left / 60), left


def _page(nxt: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any):
    """The sign-in page; when it continues an /authorize request, it names the app."""
    return render_template("login.html", next=nxt, app=flow.app_signing_in(nxt),
                           **{"error": None, **context}), status, headers or {}


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login():
    nxt = auth.safe_next(request.values.get("next"))
    if request.method == "GET":
        return _page(nxt)
    username = request.form.get("username", "")
    try:
        user = auth.check_password(username, request.form.get("password", ""))
    except auth.SignInLocked as locked:
        seconds = _minutes(locked.until)[1]
        return _page(nxt, 429, {"Retry-After": str(seconds)}, username=username,
                     error=_PASSWORD_LOCKED % {"wait": wait_words(seconds)})
    if user is None:  # the message is tied to both fields; focus goes to the password
        return _page(nxt, 401, username=username, error=str(_FAILED), invalid=True)
    if user.second_factor_required:
        auth.begin_second_factor(user)
        return redirect(url_for("login.totp", next=nxt), 303)
    auth.sign_in(user)
    return redirect(nxt, 303)


def _totp_locked_page(user: Any, until: int, nxt: str, status: int):
    minutes, seconds = _minutes(until)
    message = _TOTP_LOCKED % {"minutes": minutes,
                              "until": time.strftime("%H:%M", time.gmtime(until))}
    return render_template("totp.html", next=nxt, error=message, locked=True,
                           username=user.username), status, {"Retry-After": str(seconds)}


def _wrong_code_page(user: Any, nxt: str, code: str):
    """The TOTP step again, the error on the field that was used (a recovery code has its
    own field, in a "Use a recovery code" section that is then open)."""
    recovery = recovery_codes.normalise(code) is not None
    error = str(_WRONG_RECOVERY_CODE if recovery else _WRONG_CODE)
    return render_template("totp.html", next=nxt, error=error, recovery=recovery,
                           username=user.username), 401


def second_factor_step(*, enrolled: bool) -> tuple[Any, str] | Response:
    """(the user between password and second factor, where they go next), or a redirect:
    to the password when no one is at this step, to the other second-factor page when the
    account is (``enrolled``) or is not yet enrolled in TOTP."""
    nxt = auth.safe_next(request.values.get("next"))
    user = auth.pending_user()
    if user is None:
        return redirect(url_for("login.login", next=nxt), 303)
    if user.has_totp != enrolled:
        return redirect(url_for("login.totp" if user.has_totp else "enrol.enrol", next=nxt),
                        303)
    return user, nxt


@bp.route("/login/totp", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def totp():
    step = second_factor_step(enrolled=True)
    if not isinstance(step, tuple):
        return step
    user, nxt = step
    locked = auth.totp_locked_until(user)
    if locked is not None:
        return _totp_locked_page(user, locked, nxt, 200 if request.method == "GET" else 429)
    if request.method == "GET":
        return render_template("totp.html", next=nxt, error=None, username=user.username)
    code = request.form.get("code", "")
    outcome = auth.verify_totp(user, code)
    if outcome is auth.TotpOutcome.LOCKED:
        return _totp_locked_page(user, auth.totp_locked_until(user) or clock.now(), nxt, 429)
    if outcome is auth.TotpOutcome.RESTART:  # too many wrong codes: start over
        return redirect(url_for("login.login", next=nxt, restarted=1), 303)
    if outcome is auth.TotpOutcome.WRONG:
        return _wrong_code_page(user, nxt, code)
    auth.sign_in(user)  # OK, or RECOVERED (a recovery code, now spent)
    if outcome is auth.TotpOutcome.RECOVERED:
        notices.recovery_code_used(user)
    return redirect(nxt, 303)


@bp.post("/login/restart")
def restart():
    """"Not you? Start over": the half-done sign-in ends; the password page, same ``next``."""
    auth.abandon_second_factor()
    return redirect(url_for("login.login", next=auth.safe_next(request.form.get("next"))), 303)


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    if request.method == "GET":
        return render_template("logout.html")
    auth.sign_out()
    return redirect(url_for("login.login"), 303)
