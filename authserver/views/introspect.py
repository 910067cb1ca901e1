"""POST /introspect (RFC 7662, SMART token introspection)."""

from __future__ import annotations

from flask import Blueprint, Response

from authserver.extensions import csrf
from authserver.oauth.endpoints import SmartIntrospectionEndpoint
from authserver.oauth.server import authorization

bp = Blueprint("introspect", __name__)


@bp.route("/introspect", methods=["POST"])
@csrf.exempt  # a program's call, authenticated by client credentials or a bearer token
def introspect() -> Response:
    return authorization.create_endpoint_response(SmartIntrospectionEndpoint.ENDPOINT_NAME)
