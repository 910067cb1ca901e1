"""POST /revoke (RFC 7009), with CORS for browser apps' registered origins."""

from __future__ import annotations

from flask import Blueprint, Response, request

from authserver.extensions import csrf
from authserver.oauth import cors
from authserver.oauth import server as oauth_server
from authserver.oauth.rfc7009 import SmartRevocationEndpoint

bp = Blueprint("revoke", __name__)


@bp.route("/revoke", methods=["POST"], provide_automatic_options=False)
@csrf.exempt  # a program's call, authenticated like /token
def revoke() -> Response:
    resp = oauth_server.current().create_endpoint_response(SmartRevocationEndpoint.ENDPOINT_NAME)
    return cors.allow_client_origin(resp, request.headers.get("Origin"),
                                    request.form.get("client_id"))


@bp.route("/revoke", methods=["OPTIONS"])
def revoke_preflight() -> Response:
    return cors.preflight(request.headers.get("Origin"), methods="POST")
