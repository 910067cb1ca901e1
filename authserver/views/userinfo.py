"""GET/POST /userinfo (OpenID Connect Core §5.3); open to any origin (bearer, no cookies)."""

from __future__ import annotations

from flask import Blueprint, Response, make_response, request

from authserver.extensions import csrf
from authserver.oauth.cors import open_preflight
from authserver.oauth.userinfo import userinfo_response

bp = Blueprint("userinfo", __name__)


@bp.route("/userinfo", methods=["GET", "POST"], provide_automatic_options=False)
@csrf.exempt  # authenticated by the bearer token alone
def userinfo() -> Response:
    status, body, headers = userinfo_response(request.headers.get("Authorization"))
    resp = make_response(body, status)
    for name, value in headers:
        if name.lower() == "www-authenticate":
            resp.headers.add(name, value)
        else:
            resp.headers[name] = value
    resp.headers["Access-Control-Allow-Origin"] = "*"
    resp.headers["Access-Control-Expose-Headers"] = "WWW-Authenticate"
    return resp


@bp.route("/userinfo", methods=["OPTIONS"])
def userinfo_preflight() -> Response:
    return open_preflight("GET, POST")
