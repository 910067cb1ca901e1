"""The server's own root and its favicon: ``/`` is a landing page (sign in or one's account,
the developer portal and the administration for those whose role has them, and the discovery
documents a developer looks for), ``/favicon.ico`` the SVG icon the pages link to."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from werkzeug.wrappers import Response

from authserver.auth import session as auth
from authserver.smart.roles import Role

bp = Blueprint("site", __name__)

#: How long a browser may keep the /favicon.ico redirect (seconds).
FAVICON_MAX_AGE = 86400


@bp.get("/")
def home() -> str:
    user = auth.current_user()
    role = Role.parse(user.role) if user is not None else None
    return render_template("home.html", user=user,
                           developer=role in (Role.DEVELOPER, Role.ADMIN),
                           admin=role == Role.ADMIN)


@bp.get("/favicon.ico")
def favicon() -> Response:
    # Browsers ask for /favicon.ico on their own (e.g. for a JSON document); the pages link
    # the SVG (templates/base.html).
    resp = redirect(url_for("static", filename="favicon.svg"), 302)
    resp.headers["Cache-Control"] = f"public, max-age={FAVICON_MAX_AGE}"
    return resp
