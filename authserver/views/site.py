"""The server's own root and its favicon: ``/`` is a person's home (their account page, which
asks them to sign in first), ``/favicon.ico`` the SVG icon the pages link to."""

from __future__ import annotations

from flask import Blueprint, redirect, url_for
from werkzeug.wrappers import Response

bp = Blueprint("site", __name__)

#: How long a browser may keep the /favicon.ico redirect (seconds).
FAVICON_MAX_AGE = 86400


@bp.get("/")
def home() -> Response:
    return redirect(url_for("account.account"), 302)


@bp.get("/favicon.ico")
def favicon() -> Response:
    # Browsers ask for /favicon.ico on their own (e.g. for a JSON document); the pages link
    # the SVG (templates/base.html).
    resp = redirect(url_for("static", filename="favicon.svg"), 302)
    resp.headers["Cache-Control"] = f"public, max-age={FAVICON_MAX_AGE}"
    return resp
