"""Cross-cutting HTTP behaviour: security headers, error pages, JSON errors, template helpers.

What an error looks like is decided once, by :func:`wants_json` (the request's path):

- a program (:data:`API_PREFIXES`: the token, introspection, revocation, registration,
  userinfo, launch and discovery endpoints) gets the RFC 6749 §5.2 JSON error, never cached
  and never a page;
- a person gets ``templates/error.html``: what happened in plain words and a way on — back
  to the app when the page concerns a registered one (its https homepage), else their
  account page, or sign-in when signed out. A 500 never shows a trace: it is logged with a
  reference the page repeats.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import Flask, Response, g, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from authserver.i18n import gettext, ngettext
from authserver.smart.wording import N_

__all__ = ["init_app", "wants_json", "error_page", "no_store_json", "wait_words"]

log = logging.getLogger(__name__)

#: Paths whose callers are programs: errors there are RFC 6749 style JSON, never HTML.
API_PREFIXES = (
    "/token", "/introspect", "/revoke", "/register", "/launch", "/userinfo", "/.well-known",
    "/health", "/jwks",
)

#: The wire ``error`` of an HTTP error on an API path (RFC 6749 §5.2 names).
_WIRE_ERRORS = {400: "invalid_request", 401: "invalid_client", 404: "not_found",
                405: "invalid_request", 413: "invalid_request", 429: "slow_down"}

#: A request id from elsewhere (``g.request_id``, ``X-Request-ID``) is repeated in the log
#: and on the page only when it looks like one (no log or markup injection).
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

#: How the roles read in a sentence ("signed in as ... (administrator)").
_ROLE_WORDS = {"patient": N_("patient"), "clinician": N_("clinician"),
               "admin": N_("administrator"), "developer": N_("developer")}


def wants_json() -> bool:
    return request.path.startswith(API_PREFIXES)


def wait_words(seconds: float) -> str:
    """When to try again, in words ("Try again in about 2 minutes"), from a number of
    seconds such as a Retry-After value (rounded to the nearest minute or hour)."""
    if seconds <= 10:
        return gettext("Try again in a few seconds")
    minutes = max(1, round(seconds / 60))
    if minutes == 1:
        return gettext("Try again in about a minute")
    if minutes < 60:
        return ngettext("Try again in about %(num)s minute", "Try again in about %(num)s "
                        "minutes", minutes)
    hours = round(minutes / 60)
    return gettext("Try again in about an hour") if hours == 1 else ngettext(
        "Try again in about %(num)s hour", "Try again in about %(num)s hours", hours)


def _current_user() -> Any:
    """The signed-in user, or None (also when the database cannot say)."""
    from authserver.auth import session as auth

    try:
        return auth.current_user()
    except Exception:  # an error page must not fail for want of the user
        log.warning("error page: the signed-in user could not be read", exc_info=True)
        return None


def _account_or_sign_in() -> list[tuple[str, str]]:
    if _current_user() is not None:
        return [("/account", gettext("Go to your account"))]
    return [("/login", gettext("Sign in"))]


def _way_on(app: Any) -> list[tuple[str, str]]:
    """Back to the app (its registered https homepage) when the page concerns one, else
    the account page (sign-in when signed out)."""
    if app is not None and app.homepage:
        return [(app.homepage, gettext("Back to %(app)s", app=app.name))]
    return _account_or_sign_in()


def error_page(title: str, message: str, status: int = 400, *, app: Any = None,
               links: list[tuple[str, str]] | None = None) -> tuple[str, int]:
    """An error shown to a person (never a redirect: RFC 6749 §4.1.2.1). ``app`` is the
    registered app it concerns (an :class:`~authserver.services.authorize_steps.AppFace`),
    if any; ``links`` (href, label) replace the default way on (:func:`_way_on`)."""
    return render_template("error.html", title=title, message=message, app=app,
                           links=_way_on(app) if links is None else links), status


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


def _json_error(status: int, error: str, description: str) -> Response:
    """RFC 6749 §5.2 JSON, never cached."""
    return no_store_json({"error": error, "error_description": description}, status)


def _error(status: int, error: str, description: str, title: str, message: str):
    """RFC 6749 §5.2 JSON for API paths, else an error page."""
    if wants_json():
        return _json_error(status, error, description)
    return error_page(title, message, status)


# ---- pages for the HTTP errors ---------------------------------------------------------------

def _sign_in_again() -> str:
    """The sign-in page, keeping a safe ``next`` of this request."""
    from authserver.auth import session as auth

    nxt = auth.safe_next(request.values.get("next"), default="")
    return "/login" + (f"?{urlencode({'next': nxt})}" if nxt else "")


def _retry_after(exc: HTTPException) -> float | None:
    """Seconds until Flask-Limiter's breached window ends (what its Retry-After says)."""
    from authserver.extensions import limiter

    try:
        limit = limiter.current_limit
        if limit is not None and limit.breached:
            return limit.reset_at - time.time()
    except Exception:  # the counters' storage is unreachable: say it without a time
        log.warning("429 page: the rate limit's reset time could not be read", exc_info=True)
    retry_after = getattr(exc, "retry_after", None)
    return retry_after if isinstance(retry_after, int | float) else None


def _too_many(exc: HTTPException):
    seconds = _retry_after(exc)
    when = (wait_words(seconds) + "." if seconds is not None
            else gettext("Please wait a minute and try again."))
    if request.path.startswith("/login"):
        return error_page(gettext("Too many attempts"), gettext(
            "Too many sign-in attempts came from your network in a short time. %(when)s",
            when=when), 429, links=[(_sign_in_again(), gettext("Back to sign-in"))])
    return error_page(gettext("Too many attempts"), gettext(
        "Too many requests came from your network in a short time. %(when)s", when=when),
        429, links=[("/", gettext("Go to the home page"))])


def _forbidden(exc: HTTPException):
    user = _current_user()
    if user is None:
        return error_page(gettext("You can't open this page"), gettext(
            "This page is only for people signed in with an account that may see it."), 403,
            links=[(_sign_in_again(), gettext("Sign in"))])
    who = f"{user.name} ({user.username})" if user.name else user.username
    role = gettext(_ROLE_WORDS.get(str(user.role), str(user.role)))
    return error_page(gettext("You can't open this page"), gettext(
        "You're signed in as %(who)s (%(role)s). This page needs another role: ask an "
        "administrator if you should have it.", who=who, role=role), 403,
        links=[("/account", gettext("Go to your account")),
               ("/logout", gettext("Sign out to use another account"))])


def _bad_request(exc: HTTPException):
    # Our own abort(400, "...") says what was wrong; Werkzeug's default text does not.
    said = exc.description if exc.description != type(exc).description else None
    return error_page(gettext("That request could not be used"), said or gettext(
        "The page sent something this server could not read. Go back, reload the page and "
        "try again."), 400)


_PAGES = {
    400: _bad_request,
    403: _forbidden,
    404: lambda exc: error_page(gettext("Page not found"), gettext(
        "There is no page at this address. Check it for typos, or go on from here."), 404),
    405: lambda exc: error_page(gettext("This page can't do that"), gettext(
        "This address does not accept that kind of request (%(method)s).",
        method=request.method), 405),
    413: lambda exc: error_page(gettext("That was too much to send"), gettext(
        "The form was larger than this server accepts."), 413),
    429: _too_many,
}


def _handle_http_error(exc: HTTPException):
    status = exc.code or 500
    if wants_json():
        text = exc.description or exc.name
        if status == 429:  # Flask-Limiter: its description is the rate
            text = f"Too many requests ({text})"
        resp = _json_error(status, _WIRE_ERRORS.get(
            status, "server_error" if status >= 500 else "invalid_request"), text)
    elif status >= 500:
        log.error("%s on %s %s (request %s)", status, request.method, request.path,
                  _request_ref())
        resp = _server_error_page()
    elif status in _PAGES:
        resp = make_response(_PAGES[status](exc))
    else:
        resp = make_response(error_page(exc.name, exc.description or exc.name, status))
    if status == 405 and getattr(exc, "valid_methods", None):
        # RFC 9110 §15.5.6: a 405 "MUST generate an Allow header field".
        resp.headers["Allow"] = ", ".join(exc.valid_methods)
    return resp


# ---- an expired form (CSRF), https, and the unexpected ---------------------------------------

def _page_to_reload() -> str:
    """Where the expired form was: the Referer when it is this site (path and query only),
    else this address when it is also a page (GET), keeping ``next`` and ``req``, else home."""
    from authserver.auth import session as auth

    ref = request.referrer or ""
    try:
        parts, here = urlsplit(ref), urlsplit(request.host_url)
    except ValueError:
        parts = here = None
    if parts and (parts.scheme, parts.netloc.lower()) == (here.scheme, here.netloc.lower()):
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        if auth.safe_next(path, default="") == path:
            return path
    if request.url_rule is not None and "GET" in (request.url_rule.methods or ()):
        keep = {k: v for k in ("next", "req") if (v := request.form.get(k))}
        if auth.safe_next(keep.get("next"), default="") != keep.get("next", ""):
            keep.pop("next")
        return request.path + (f"?{urlencode(keep)}" if keep else "")
    return "/"


def _handle_csrf_error(exc: CSRFError):
    """Flask-WTF refused a form (its token expired with the session, or is missing): the
    view never ran, so nothing was changed."""
    if wants_json():
        return _json_error(400, "invalid_request", exc.description)
    return error_page(gettext("This page expired — reload to try again"), gettext(
        "The form was open too long, or your sign-in ended, so it could not be sent. Nothing "
        "was changed. Reload the page and try again."), 400,
        links=[(_page_to_reload(), gettext("Reload the page"))])


def _handle_insecure_transport(exc: Exception):
    # Authlib refuses OAuth over plain http (except loopback); behind a TLS proxy set
    # AUTHSERVER_TRUST_PROXY so the forwarded scheme is seen.
    return _error(400, "invalid_request", "OAuth 2 requires https", gettext("https required"),
                  gettext("This server only accepts https requests."))


def _request_ref() -> str:
    """This request's id for the log and the page: the one given to it (``g.request_id``,
    ``X-Request-ID``) when well formed, else a new random one, kept for the request."""
    if "error_ref" not in g:
        given = [v for v in (g.get("request_id"), request.headers.get("X-Request-ID"))
                 if isinstance(v, str) and _REQUEST_ID.fullmatch(v)]
        g.error_ref = given[0] if given else secrets.token_hex(8)
    return g.error_ref


def _server_error_page() -> Response:
    """The 500 page: no trace, no database (it may be what failed), the log's reference."""
    ref = _request_ref()
    try:
        message = gettext("The error was logged (reference %(ref)s). Please try again in a "
                          "moment; if it keeps happening, give the reference to your "
                          "administrator.", ref=ref)
        body = render_template("error.html", title=gettext("Something went wrong on our side"),
                               message=message,
                               links=[("/account", gettext("Go to your account"))])
    except Exception:  # the catalogue or the template failed: plain words still
        log.exception("the 500 page could not be rendered (request %s)", ref)
        return Response(f"Something went wrong on our side. The error was logged (reference "
                        f"{ref}). Please try again in a moment; if it keeps happening, give "
                        "the reference to your administrator.\n", 500, mimetype="text/plain")
    return make_response(body, 500)


def _handle_unexpected(exc: Exception):
    log.exception("unhandled error on %s %s (request %s)", request.method, request.path,
                  _request_ref())
    if wants_json():
        return _json_error(500, "server_error", "Internal error")
    return _server_error_page()


def init_app(app: Flask) -> None:
    app.after_request(_security_headers)
    app.register_error_handler(HTTPException, _handle_http_error)
    app.register_error_handler(CSRFError, _handle_csrf_error)
    from authlib.oauth2.rfc6749.errors import InsecureTransportError

    app.register_error_handler(InsecureTransportError, _handle_insecure_transport)
    app.register_error_handler(Exception, _handle_unexpected)

    @app.context_processor
    def _globals() -> dict:
        from flask_wtf.csrf import generate_csrf

        return {"csrf_token": generate_csrf, "issuer": app.config["ISSUER"]}
