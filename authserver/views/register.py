"""POST /register: RFC 7591 dynamic client registration."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from authserver.extensions import csrf
from authserver.oauth.registration import register_dynamic

bp = Blueprint("register", __name__)


@bp.post("/register")
@csrf.exempt
def register():
    body = request.get_json(silent=True) if request.is_json else None
    if body is None:
        status, payload = 400, {"error": "invalid_client_metadata",
                                "error_description": "Send the metadata as application/json"}
    else:
        status, payload = register_dynamic(body)
    resp = jsonify(payload)
    resp.status_code = status
    # RFC 7591 §3.2.1: the response carries a secret: never cache it.
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Pragma"] = "no-cache"
    return resp
