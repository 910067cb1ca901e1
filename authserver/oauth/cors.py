"""CORS for the token endpoint: only origins of registered redirect URIs (SMART 2.1+ §CORS).

Preflights carry no client id, so an origin is accepted there when any registered app
uses it; the actual response names the origin only when it belongs to the calling client.
"""

from __future__ import annotations

import base64
import threading
import time

from flask import Response, current_app, make_response
from sqlalchemy import select

from authserver.extensions import db
from authserver.models import Client
from authserver.oauth.clients import OAuthClient, origin_of

__all__ = ["preflight", "allow_client_origin", "ORIGIN_CACHE_SECONDS"]

ORIGIN_CACHE_SECONDS = 30.0
#: An origin not in the cache triggers a reload at most this often (new registrations).
ORIGIN_MISS_RELOAD_SECONDS = 1.0
_lock = threading.Lock()


def _registered_origins(origin: str) -> frozenset[str]:
    # One cache per app: several apps (tests, or instances in one process) never share it.
    _cache = current_app.extensions.setdefault("authserver.cors_origins",
                                               {"at": 0.0, "origins": frozenset()})
    with _lock:
        age = time.monotonic() - float(_cache["at"])
        missing = origin not in _cache["origins"]  # type: ignore[operator]
        if age > ORIGIN_CACHE_SECONDS or (missing and age > ORIGIN_MISS_RELOAD_SECONDS):
            origins = set()
            for meta in db.session.scalars(select(Client.client_metadata)
                                           .where(Client.disabled.is_(False))):
                origins |= {o for o in (origin_of(u) for u in (meta or {}).get(
                    "redirect_uris", [])) if o}
            _cache.update(at=time.monotonic(), origins=frozenset(origins))
        return _cache["origins"]  # type: ignore[return-value]


def preflight(origin: str | None, methods: str) -> Response:
    resp = make_response("", 204)
    resp.headers["Vary"] = "Origin"
    if origin and origin in _registered_origins(origin):
        resp.headers["Access-Control-Allow-Origin"] = origin
        resp.headers["Access-Control-Allow-Methods"] = methods
        resp.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
        resp.headers["Access-Control-Max-Age"] = "600"
    return resp


def _basic_client_id(auth_header: str | None) -> str | None:
    if not auth_header or not auth_header.lower().startswith("basic "):
        return None
    try:
        return base64.b64decode(auth_header[6:]).decode().split(":", 1)[0]
    except (ValueError, UnicodeDecodeError):
        return None


def allow_client_origin(resp: Response, origin: str | None, client_id: str | None) -> Response:
    if not origin:
        return resp
    from flask import request

    from authserver.oauth import storage

    cid = client_id or _basic_client_id(request.headers.get("Authorization"))
    row = storage.get_client(cid)
    if row is not None and origin in OAuthClient(row).origins:
        resp.headers["Access-Control-Allow-Origin"] = origin
        resp.headers["Vary"] = "Origin"
    return resp
