"""POST /introspect (RFC 7662, SMART token introspection)."""

from __future__ import annotations

from flask import Blueprint, Response

from authserver.extensions import csrf
from authserver.oauth import server as oauth_server
from authserver.oauth.rfc7662 import SmartIntrospectionEndpoint

bp = Blueprint("introspect", __name__)


@bp.route("/introspect", methods=["POST"])
@csrf.exempt  # a program's call, authenticated by client credentials or a bearer token
def introspect() -> Response:
    return oauth_server.current().create_endpoint_response(SmartIntrospectionEndpoint.ENDPOINT_NAME)
