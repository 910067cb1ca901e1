"""Discovery: SMART configuration, OpenID configuration, JWKS (CORS open to any origin)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from authserver.oauth import discovery

bp = Blueprint("wellknown", __name__)


def _public_json(body: dict, max_age: int) -> Response:
    # SMART: 200 + application/json regardless of Accept; CORS for any origin.
    resp = jsonify(body)
    resp.headers["Access-Control-Allow-Origin"] = "*"
    resp.headers["Cache-Control"] = f"public, max-age={max_age}"
    return resp


@bp.get("/.well-known/smart-configuration")
def smart_configuration() -> Response:
    return _public_json(discovery.smart_document(), 3600)


@bp.get("/.well-known/openid-configuration")
def openid_configuration() -> Response:
    return _public_json(discovery.openid_document(), 3600)


@bp.get("/.well-known/jwks.json")
def jwks() -> Response:
    # Short max-age: a rotated key must reach resource servers quickly.
    return _public_json(discovery.jwks_document(), 300)
