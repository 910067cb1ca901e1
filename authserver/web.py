"""Cross-cutting HTTP behaviour: security headers, error pages, JSON errors, template helpers."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

__all__ = ["init_app", "wants_json", "error_page", "no_store_json"]

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


def no_store_json(body: Any, status: int = 200,
                  headers: Iterable[tuple[str, str]] | dict[str, str] = ()) -> Response:
    """A JSON answer that carries a secret or an error: RFC 6749 §5.1 "Cache-Control:
    no-store" and "Pragma: no-cache" (also RFC 7591 §3.2.1 and §5.2 errors)."""
    resp = jsonify(body)
    resp.status_code = status
    resp.headers.update(headers)
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Pragma"] = "no-cache"
    return resp


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


def _error(status: int, error: str, description: str, title: str, message: str):
    """RFC 6749 §5.2 JSON for API paths (never cached), else an error page."""
    if wants_json():
        return no_store_json({"error": error, "error_description": description}, status)
    return error_page(title, message, status)


def _handle_http_error(exc: HTTPException):
    status = exc.code or 500
    error = {400: "invalid_request", 401: "invalid_client", 404: "not_found",
             405: "invalid_request", 413: "invalid_request", 429: "slow_down"}.get(
        status, "server_error" if status >= 500 else "invalid_request")
    text = exc.description or exc.name
    if status == 429:  # Flask-Limiter: its description is the rate; say what to do instead
        return _error(status, error, f"Too many requests ({text})", "Too many attempts",
                      "Too many attempts from your network. Please wait a minute and try "
                      "again.")
    return _error(status, error, text, exc.name, text)


def _handle_insecure_transport(exc: Exception):
    # Authlib refuses OAuth over plain http (except loopback); behind a TLS proxy set
    # AUTHSERVER_TRUST_PROXY so the forwarded scheme is seen.
    return _error(400, "invalid_request", "OAuth 2 requires https", "https required",
                  "This server only accepts https requests.")


def _handle_unexpected(exc: Exception):
    log.exception("unhandled error on %s %s", request.method, request.path)
    return _error(500, "server_error", "Internal error", "Something went wrong",
                  "Please try again.")


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
