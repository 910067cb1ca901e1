"""POST /token (and its CORS preflight for browser apps' registered origins)."""

from __future__ import annotations

from flask import Blueprint, Response, g, request

from authserver.extensions import csrf
from authserver.oauth import cors
from authserver.oauth import server as oauth_server

bp = Blueprint("token", __name__)


# provide_automatic_options=False: else Flask's own OPTIONS answer (no CORS headers) wins
# over the preflight below.
@bp.route("/token", methods=["POST"], provide_automatic_options=False)
@csrf.exempt
def token() -> Response:
    resp = oauth_server.current().create_token_response()
    # Authlib's JSON headers carry Cache-Control: no-store and Pragma: no-cache, errors too.
    # Every answer, errors included, carries the CORS headers of the client it is about
    # (so a browser app can read why it was refused): the client the grant identified, or
    # the one the request names (client_id, HTTP Basic, or the refresh token).
    client_id = g.get("token_client_id") or request.form.get("client_id")
    return cors.allow_client_origin(resp, request.headers.get("Origin"), client_id,
                                    refresh_token=request.form.get("refresh_token"))


@bp.route("/token", methods=["OPTIONS"])
def token_preflight() -> Response:
    return cors.preflight(request.headers.get("Origin"), methods="POST")
