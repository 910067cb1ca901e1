"""/account: the signed-in user's connected apps ("Revoke access") and sign-in settings."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, flash, redirect, render_template, request, url_for

from authserver.auth import session as auth
from authserver.services.connected_apps import connected_apps, revoke_app

bp = Blueprint("account", __name__)


@bp.app_template_filter("when")
def _when(ts: int | None) -> str:
    if not ts:
        return "—"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


@bp.app_template_filter("day")
def _day(ts: int | None) -> str:
    """A date as people write it: "3 December 2026" (UTC)."""
    if not ts:
        return "—"
    d = datetime.fromtimestamp(ts, UTC)
    return f"{d.day} {d.strftime('%B %Y')}"


@bp.get("/account")
def account():
    user = auth.current_user()
    if user is None:
        return redirect(url_for("login.login", next="/account"), 303)
    return render_template("account.html", user=user, apps=connected_apps(user.id))


@bp.post("/account/revoke")
def revoke():
    user = auth.current_user()
    if user is None:
        return redirect(url_for("login.login", next="/account"), 303)
    client_id = request.form.get("client_id", "")
    if revoke_app(user.id, client_id):
        flash("Access revoked. The app can no longer use your data.")
    return redirect(url_for("account.account"), 303)
