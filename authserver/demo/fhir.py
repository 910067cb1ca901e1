"""The demo FHIR R4 server: synthetic data, read and search, protected by the resource kit.

A separate Flask application (``authserver fhir-demo``; ``authserver demo`` starts it beside
the authorization server). Every data request goes through :func:`require_smart`: 401 with
``WWW-Authenticate`` for no or a bad token, 403 with an OperationOutcome when the scopes do
not allow the interaction on the type, and results limited to what the token reaches (the
patient in context for ``patient/`` scopes, granular ``?category=`` scopes filtered).

- FHIR R4 RESTful API https://hl7.org/fhir/R4/http.html (read, search-type, searchset Bundle)
- SMART App Launch 2.2 conformance: ``{fhirBase}/.well-known/smart-configuration`` (served
  here from the authorization server's document) and the CapabilityStatement ``oauth-uris``
  extension https://hl7.org/fhir/smart-app-launch/conformance.html
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from flask import Blueprint, Flask, Response, request

from authserver.demo import fhir_data
from authserver.resource import (
    Introspection,
    TokenValidator,
    current_access,
    patient_of,
    require_smart,
)
from authserver.resource.access import reference_id
from authserver.resource.flask import fhir_error
from authserver.smart.access import resource_matches

__all__ = ["create_fhir_app", "serve", "SEARCH_PARAMS"]

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
#: oauth-uris extension name -> smart-configuration member (values must be identical).
OAUTH_URI_MEMBERS = {"authorize": "authorization_endpoint", "token": "token_endpoint",
                     "introspect": "introspection_endpoint", "revoke": "revocation_endpoint",
                     "manage": "management_endpoint", "register": "registration_endpoint"}
#: Where the authorization server's endpoints are when its document cannot be fetched.
DEFAULT_PATHS = {"authorization_endpoint": "/authorize", "token_endpoint": "/token",
                 "introspection_endpoint": "/introspect", "revocation_endpoint": "/revoke",
                 "management_endpoint": "/account", "registration_endpoint": "/register"}
#: How long the authorization server's smart-configuration is reused (seconds).
DISCOVERY_CACHE_SECONDS = 60.0

#: Search parameters each type supports (others are ignored, FHIR "lenient" handling).
SEARCH_PARAMS: dict[str, tuple[str, ...]] = {
    "Patient": ("_id", "name", "family", "given"),
    "Practitioner": ("_id", "name", "family", "given"),
    "Observation": ("_id", "patient", "subject", "category", "code", "encounter"),
    "Condition": ("_id", "patient", "subject", "category", "code"),
    "Encounter": ("_id", "patient", "subject"),
}


class _Discovery:
    """The authorization server's smart-configuration, fetched and cached."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self._doc: dict[str, Any] | None = None
        self._at = 0.0
        self._lock = threading.Lock()

    def document(self) -> dict[str, Any] | None:
        with self._lock:
            if self._doc is not None and time.monotonic() - self._at < DISCOVERY_CACHE_SECONDS:
                return self._doc
            try:
                resp = requests.get(self.issuer + "/.well-known/smart-configuration", timeout=5,
                                    headers={"Accept": "application/json"})
                doc = resp.json() if resp.status_code == 200 else None
            except (requests.RequestException, ValueError):
                doc = None
            if isinstance(doc, dict):
                self._doc, self._at = doc, time.monotonic()
            return self._doc

    def endpoint(self, member: str) -> str:
        doc = self.document() or {}
        value = doc.get(member)
        return value if isinstance(value, str) else self.issuer + DEFAULT_PATHS[member]


def _names(resource: Mapping[str, Any]) -> list[str]:
    out = []
    for name in resource.get("name") or []:
        out += [name.get("family") or "", name.get("text") or ""] + list(name.get("given") or [])
    return [n.lower() for n in out if n]


def _value_matches(resource: Mapping[str, Any], param: str, value: str) -> bool:
    options = [v for v in value.split(",") if v]
    if param == "_id":
        return resource.get("id") in options
    if param in ("patient", "subject"):
        wanted = {reference_id(v, "Patient") or v for v in options}
        return patient_of(resource) in wanted and resource.get("resourceType") != "Patient"
    if param == "encounter":
        ref = (resource.get("encounter") or {}).get("reference")
        return reference_id(ref, "Encounter") in {reference_id(v, "Encounter") or v
                                                  for v in options}
    if param in ("category", "code"):
        return resource_matches(dict(resource), ((param, value),))
    if param in ("name", "family", "given"):
        names = _names(resource)
        return any(o.lower() in n for o in options for n in names)
    return True


def _search(candidates: list[dict[str, Any]], resource_type: str,
            params: Mapping[str, list[str]]) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    used = {k: v for k, v in params.items() if k in SEARCH_PARAMS[resource_type]}
    hits = [r for r in candidates
            if all(_value_matches(r, k, v) for k, values in used.items() for v in values)]
    return hits, used


def _fhir(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type=FHIR_JSON)


def _capability_statement(fhir_base: str, discovery: _Discovery) -> dict[str, Any]:
    uris = [{"url": name, "valueUri": discovery.endpoint(member)}
            for name, member in OAUTH_URI_MEMBERS.items()]
    resources = [{"type": t, "interaction": [{"code": "read"}, {"code": "search-type"}],
                  "searchParam": [{"name": p, "type": "token" if p in (
                      "_id", "category", "code") else "reference" if p in (
                      "patient", "subject", "encounter") else "string"}
                      for p in SEARCH_PARAMS[t]]}
                 for t in fhir_data.RESOURCE_TYPES]
    return {
        "resourceType": "CapabilityStatement", "status": "active", "date": "2026-01-01",
        "kind": "instance", "fhirVersion": "4.0.1", "format": ["json"],
        "software": {"name": "authserver demo FHIR server"},
        "implementation": {"description": "Synthetic demo data", "url": fhir_base},
        "rest": [{
            "mode": "server",
            "security": {
                "extension": [{"url": OAUTH_URIS, "extension": uris}],
                "service": [{"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                    "code": "SMART-on-FHIR"}], "text": "OAuth2 using SMART-on-FHIR"}],
                "description": "SMART App Launch 2.2: send an access token as "
                               "'Authorization: Bearer'",
            },
            "resource": resources,
        }],
    }


def create_fhir_app(issuer: str, fhir_base: str, introspection: dict | None = None) -> Flask:
    """The demo FHIR server for tokens of ``issuer`` with ``aud`` = ``fhir_base``.

    ``introspection`` ({"client_id", "client_secret"[, "endpoint"]}: resource-server
    credentials from ``authserver resource-server create``) turns on introspection mode:
    every token is also checked at the issuer, so revocation bites at once.
    """
    issuer = issuer.rstrip("/")
    fhir_base = fhir_base.rstrip("/")
    prefix = urlsplit(fhir_base).path.rstrip("/")
    validator = TokenValidator(
        issuer, fhir_base,
        introspection=Introspection(**introspection) if introspection else None)
    discovery = _Discovery(issuer)
    store = fhir_data.resources()
    app = Flask("authserver.demo.fhir")
    app.config.update(FHIR_BASE=fhir_base, ISSUER=issuer, JSON_SORT_KEYS=False)
    app.extensions["smart_validator"] = validator
    bp = Blueprint("fhir", __name__, url_prefix=prefix or None)
    guard = {"realm": fhir_base, "type_arg": "resource_type"}

    @bp.get("/metadata")
    def metadata() -> Response:
        return _fhir(_capability_statement(fhir_base, discovery))

    @bp.get("/.well-known/smart-configuration")
    def smart_configuration() -> Response:
        # SMART: served at the FHIR base, 200 application/json whatever the Accept header.
        doc = discovery.document()
        if doc is None:
            return Response(json.dumps({"error": "temporarily_unavailable"}), status=503,
                            content_type="application/json")
        resp = Response(json.dumps(doc), content_type="application/json")
        resp.headers["Cache-Control"] = "public, max-age=60"
        return resp

    @bp.get("/<resource_type>/<rid>")
    @require_smart(validator, "r", **guard)
    def read(resource_type: str, rid: str) -> Response:
        if resource_type not in store:
            return fhir_error(404, f"Resource type '{resource_type}' is not supported")
        resource = store[resource_type].get(rid)
        if resource is None or not current_access().permits(resource):
            # Another patient's record looks the same as a missing one.
            return fhir_error(404, f"{resource_type}/{rid} is not known")
        return _fhir(resource)

    @bp.route("/<resource_type>", methods=["GET"])
    @bp.route("/<resource_type>/_search", methods=["POST"])
    @require_smart(validator, "s", **guard)
    def search(resource_type: str) -> Response:
        if resource_type not in store:
            return fhir_error(404, f"Resource type '{resource_type}' is not supported")
        params = {k: request.values.getlist(k) for k in request.values}
        visible = current_access().filter(store[resource_type].values())
        hits, used = _search(list(visible), resource_type, params)
        pairs = [(k, v) for k, values in used.items() for v in values]
        self_url = f"{fhir_base}/{resource_type}" + (f"?{urlencode(pairs)}" if pairs else "")
        return _fhir({
            "resourceType": "Bundle", "type": "searchset", "total": len(hits),
            "link": [{"relation": "self", "url": self_url}],
            "entry": [{"fullUrl": f"{fhir_base}/{resource_type}/{r['id']}", "resource": r,
                       "search": {"mode": "match"}} for r in hits],
        })

    app.register_blueprint(bp)

    @app.before_request
    def _preflight() -> Response | None:
        if request.method != "OPTIONS":
            return None
        resp = Response(status=204)
        resp.headers["Access-Control-Allow-Methods"] = "GET, POST"
        resp.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type, Accept"
        resp.headers["Access-Control-Max-Age"] = "600"
        return resp

    @app.after_request
    def _headers(resp: Response) -> Response:
        # SMART: CORS on discovery and metadata; bearer tokens (no cookies) elsewhere.
        resp.headers["Access-Control-Allow-Origin"] = "*"
        resp.headers["Access-Control-Expose-Headers"] = "WWW-Authenticate, Location"
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        return resp

    @app.errorhandler(404)
    def _not_found(exc: Exception) -> Response:
        return fhir_error(404, "No such FHIR endpoint")

    @app.errorhandler(405)
    def _not_allowed(exc: Exception) -> Response:
        return fhir_error(405, "This demo server only reads and searches")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        from werkzeug.exceptions import HTTPException

        if isinstance(exc, HTTPException):
            return fhir_error(exc.code or 500, exc.description or exc.name)
        log.exception("unhandled error on %s %s", request.method, request.path)
        return fhir_error(500, "Internal error")

    return app


def serve(host: str, port: int, issuer: str, fhir_base: str,
          introspection: dict | None = None) -> None:
    """Serve the demo FHIR server until interrupted (threaded werkzeug server)."""
    from werkzeug.serving import make_server

    app = create_fhir_app(issuer, fhir_base, introspection)
    server = make_server(host, port, app, threaded=True)
    mode = "introspection" if introspection else "local JWT validation"
    log.warning("demo FHIR server on %s (tokens of %s, %s)", fhir_base, issuer, mode)
    try:
        server.serve_forever()
    except KeyboardInterrupt:  # pragma: no cover - interactive stop
        pass
    finally:
        server.server_close()
