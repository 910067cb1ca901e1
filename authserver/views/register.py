"""POST /register: RFC 7591 dynamic client registration."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from authserver.extensions import csrf, limiter
from authserver.services import registration
from authserver.web import no_store_json

bp = Blueprint("register", __name__)


def _registration_limit() -> str:
    return current_app.config["REGISTRATION_RATE_LIMIT"]


def _body() -> bytes | None:
    """The raw body, or None when it is over the limit (not read past it)."""
    request.max_content_length = registration.MAX_BODY_BYTES
    try:
        return request.get_data(cache=False)
    except RequestEntityTooLarge:
        return None


@bp.post("/register")
@csrf.exempt
# Every attempt counts (refused ones too), per client address.
@limiter.limit(_registration_limit)
def register() -> Response:
    status, payload, headers = registration.register_dynamic(
        _body(), is_json=request.is_json, authorization=request.headers.get("Authorization"))
    # RFC 7591 §3.2.1: the response carries a secret: never cache it.
    return no_store_json(payload, status, headers)
