"""CORS for the token endpoint: only origins of registered redirect URIs (SMART 2.1+ §CORS).

Preflights carry no client id, so an origin is accepted there when any enabled app uses
it: one indexed lookup in ``client_origins`` (written with the redirect URIs, see
:func:`authserver.store.clients.set_client_origins`), whatever the number of apps. The
actual response names the origin only when it belongs to the calling client.

No per-process cache: the lookup is one primary-key probe, cheaper than keeping a cache
coherent across workers, and a disabled app's origin stops working at once.
"""

from __future__ import annotations

from flask import Response, make_response

from authserver import store
from authserver.oauth.clients import OAuthClient
from authserver.oauth.http_basic import basic_credentials

__all__ = ["preflight", "open_preflight", "allow_client_origin"]


def _preflight_answer(allow_origin: str | None, methods: str) -> Response:
    """204 to a CORS preflight; it allows ``methods`` from ``allow_origin`` when one is
    given (the Fetch standard's CORS-preflight response headers)."""
    resp = make_response("", 204)
    if allow_origin:
        resp.headers["Access-Control-Allow-Origin"] = allow_origin
        resp.headers["Access-Control-Allow-Methods"] = methods
        resp.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
        resp.headers["Access-Control-Max-Age"] = "600"
    return resp


def preflight(origin: str | None, methods: str) -> Response:
    """A preflight to an endpoint open to the apps' registered origins."""
    allowed = origin if origin and store.clients.origin_is_registered(origin) else None
    resp = _preflight_answer(allowed, methods)
    resp.headers["Vary"] = "Origin"
    return resp


def open_preflight(methods: str) -> Response:
    """A preflight to an endpoint open to any origin (bearer token, no cookies)."""
    return _preflight_answer("*", methods)


def allow_client_origin(resp: Response, origin: str | None, client_id: str | None,
                        refresh_token: str | None = None) -> Response:
    """Name ``origin`` in ``resp`` when it is a registered origin of the client the request
    is about: ``client_id``, else the HTTP Basic client, else the refresh token's client."""
    if not origin:
        return resp
    from flask import request

    basic = basic_credentials(request.headers.get("Authorization"))
    cid = client_id or (basic[0] if basic else None)
    if not cid and refresh_token:
        row = store.authorization.find_refresh_token(refresh_token)
        cid = row.client_id if row is not None else None
    row = store.clients.find_client(cid) if cid else None
    if row is not None and origin in OAuthClient(row).origins:
        resp.headers["Access-Control-Allow-Origin"] = origin
        resp.headers["Vary"] = "Origin"
    return resp
