"""Cross-cutting HTTP behaviour: security headers, error pages, JSON errors, template helpers."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

__all__ = ["init_app", "wants_json", "error_page"]

log = logging.getLogger(__name__)

#: Paths whose callers are programs: errors there are RFC 6749 style JSON, never HTML.
API_PREFIXES = (
    "/token", "/introspect", "/revoke", "/register", "/launch", "/userinfo", "/.well-known",
    "/health", "/jwks",
)


def wants_json() -> bool:
    return request.path.startswith(API_PREFIXES)


def error_page(title: str, message: str, status: int = 400) -> tuple[str, int]:
    """An error shown to a person (never a redirect: RFC 6749 §4.1.2.1)."""
    return render_template("error.html", title=title, message=message), status


def _security_headers(resp: Response) -> Response:
    h = resp.headers
    # RFC 9700 §4.16: no framing of the authorization, login or consent pages.
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault(
        "Content-Security-Policy",
        # Loopback http for logos of apps registered on this machine (RFC 8252 native/dev apps).
        "default-src 'self'; img-src 'self' data: https: http://127.0.0.1:* http://localhost:*; "
        "style-src 'self'; "
        "script-src 'self'; frame-ancestors 'none'; "
        "base-uri 'none'",
    )
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("Referrer-Policy", "no-referrer")
    if request.path.startswith(("/login", "/authorize", "/account", "/admin", "/developer")):
        h.setdefault("Cache-Control", "no-store")
    return resp


def _handle_http_error(exc: HTTPException):
    status = exc.code or 500
    if wants_json():
        error = {400: "invalid_request", 401: "invalid_client", 404: "not_found",
                 405: "invalid_request", 413: "invalid_request", 429: "slow_down"}.get(
            status, "server_error" if status >= 500 else "invalid_request")
        resp = jsonify(error=error, error_description=exc.description or exc.name)
        resp.status_code = status
        resp.headers["Cache-Control"] = "no-store"
        resp.headers["Pragma"] = "no-cache"
        return resp
    return error_page(exc.name, exc.description or exc.name, status)


def _handle_insecure_transport(exc: Exception):
    # Authlib refuses OAuth over plain http (except loopback); behind a TLS proxy set
    # AUTHSERVER_TRUST_PROXY so the forwarded scheme is seen.
    if wants_json():
        resp = jsonify(error="invalid_request", error_description="OAuth 2 requires https")
        resp.status_code = 400
        resp.headers["Cache-Control"] = "no-store"
        return resp
    return error_page("https required", "This server only accepts https requests.", 400)


def _handle_unexpected(exc: Exception):
    log.exception("unhandled error on %s %s", request.method, request.path)
    if wants_json():
        resp = jsonify(error="server_error", error_description="Internal error")
        resp.status_code = 500
        resp.headers["Cache-Control"] = "no-store"
        return resp
    return error_page("Something went wrong", "Please try again.", 500)


def init_app(app: Flask) -> None:
    app.after_request(_security_headers)
    app.register_error_handler(HTTPException, _handle_http_error)
    from authlib.oauth2.rfc6749.errors import InsecureTransportError

    app.register_error_handler(InsecureTransportError, _handle_insecure_transport)
    app.register_error_handler(Exception, _handle_unexpected)

    @app.context_processor
    def _globals() -> dict:
        from flask_wtf.csrf import generate_csrf

        return {"csrf_token": generate_csrf, "issuer": app.config["ISSUER"]}
