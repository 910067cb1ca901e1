"""The demo SMART app: a launch a person can click through, from "Launch" to the token.

A small Flask application of its own (``authserver demo`` serves it beside the
authorization server, on its own port, so it is a real cross-origin app). It is a public
client (``token_endpoint_auth_method: none``) and does what SMART App Launch 2.2 asks of an
app (https://hl7.org/fhir/smart-app-launch/app-launch.html):

- discovery: the authorization server's ``/.well-known/smart-configuration``;
- standalone launch: ``response_type=code``, ``client_id``, ``redirect_uri``, ``scope``,
  ``state``, ``aud`` (the FHIR base), PKCE ``S256`` and an OpenID Connect ``nonce``, sent
  with a POST form (the ``authorize-post`` capability);
- EHR launch: ``/launch?iss=...&launch=...`` (``iss`` must be the configured FHIR base:
  the app never follows an ``iss`` it does not know);
- callback: checks ``state`` (kept in this app's own session cookie) and ``iss`` (RFC 9207
  mix-up defence), exchanges the code with its ``code_verifier``, verifies the id_token's
  signature against the JWKS, its ``aud`` and its ``nonce``, then reads the Patient and
  Observations from the FHIR server with the access token and shows all of it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from typing import Any

import requests
from flask import Flask, Response, render_template, request, session

from authserver.jose import TokenError, verify_compact
from authserver.paths import data_dir
from authserver.smart.client_types import GrantType

__all__ = ["create_demo_app", "STANDALONE_SCOPE", "EHR_SCOPE", "DEMO_APP_NAME",
           "CALLBACK_PATH", "LAUNCH_PATH"]

DEMO_APP_NAME = "SMART Demo App"
CALLBACK_PATH = "/callback"
LAUNCH_PATH = "/launch"
#: What the standalone launch asks for: Condition and Observation whole-resource scopes, so
#: the consent page offers their category sub-scopes.
STANDALONE_SCOPE = ("openid fhirUser launch/patient offline_access patient/Patient.rs "
                    "patient/Observation.rs patient/Condition.rs")
EHR_SCOPE = "launch openid fhirUser patient/*.rs user/*.rs"
#: Launches kept per browser (state -> verifier, nonce) and how long they are good.
MAX_PENDING = 5
PENDING_SECONDS = 1800
#: Seconds to wait for the authorization and FHIR servers.
HTTP_TIMEOUT = 10

LOGO_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 48 48">'
    '<rect width="48" height="48" rx="10" fill="#0b7a5f"/>'
    '<path d="M10 27h8l3-9 6 17 4-12 2 4h5" fill="none" stroke="#fff" stroke-width="3" '
    'stroke-linecap="round" stroke-linejoin="round"/></svg>')


class _Discovery:
    """The authorization server's SMART configuration and JWKS, fetched once and cached."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self._doc: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def document(self) -> dict[str, Any]:
        with self._lock:
            if self._doc is None:
                resp = requests.get(self.issuer + "/.well-known/smart-configuration",
                                    timeout=HTTP_TIMEOUT)
                resp.raise_for_status()
                self._doc = resp.json()
            return self._doc

    def jwks(self) -> dict[str, Any]:
        resp = requests.get(self.document()["jwks_uri"], timeout=HTTP_TIMEOUT)
        resp.raise_for_status()
        return resp.json()


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _remember(state: str, **values: Any) -> None:
    pending = {k: v for k, v in session.get("launches", {}).items()
               if v.get("at", 0) > time.time() - PENDING_SECONDS}
    pending[state] = {**values, "at": int(time.time())}
    session["launches"] = dict(sorted(pending.items(), key=lambda kv: kv[1]["at"])
                               [-MAX_PENDING:])


def _recall(state: str) -> dict[str, Any] | None:
    pending = dict(session.get("launches", {}))
    found = pending.pop(state, None) if isinstance(state, str) else None
    session["launches"] = pending
    if found is None or found.get("at", 0) <= time.time() - PENDING_SECONDS:
        return None
    return found


def _verify_id_token(discovery: _Discovery, id_token: str, client_id: str,
                     nonce: str) -> dict[str, Any]:
    """OpenID Connect Core §3.1.3.7: signature (RS256, a published key), iss, aud, exp,
    and the nonce this browser sent. Raises :class:`TokenError`."""
    _, claims = verify_compact(id_token, discovery.jwks(), ["RS256"])
    aud = claims.get("aud")
    checks = {"iss": claims.get("iss") == discovery.issuer,
              "aud": aud == client_id or (isinstance(aud, list) and client_id in aud),
              "exp": isinstance(claims.get("exp"), int) and claims["exp"] > time.time() - 30,
              "nonce": claims.get("nonce") == nonce, "sub": bool(claims.get("sub"))}
    failed = [name for name, ok in checks.items() if not ok]
    if failed:
        raise TokenError(f"id_token claim(s) not valid: {', '.join(failed)}")
    return claims


def _observation_rows(bundle: dict[str, Any]) -> list[dict[str, str]]:
    rows = []
    for entry in bundle.get("entry") or []:
        obs = entry.get("resource") or {}
        category = ", ".join(c.get("code", "") for cat in obs.get("category") or []
                             for c in cat.get("coding") or [])
        quantity = obs.get("valueQuantity") or {}
        rows.append({"what": (obs.get("code") or {}).get("text") or
                     ((obs.get("code") or {}).get("coding") or [{}])[0].get("display", ""),
                     "category": category,
                     "value": f"{quantity.get('value', '')} {quantity.get('unit', '')}".strip(),
                     "when": obs.get("effectiveDateTime", "")})
    return rows


def _read_fhir(fhir_base: str, token: dict[str, Any]) -> dict[str, Any]:
    """What the access token reaches: the patient and their observations (or why not)."""
    patient = token.get("patient")
    if not patient:
        return {"note": "No patient in context, so nothing to read."}
    headers = {"Authorization": f"Bearer {token['access_token']}",
               "Accept": "application/fhir+json"}
    try:
        pat = requests.get(f"{fhir_base}/Patient/{patient}", headers=headers,
                           timeout=HTTP_TIMEOUT)
        obs = requests.get(f"{fhir_base}/Observation", params={"patient": patient},
                           headers=headers, timeout=HTTP_TIMEOUT)
    except requests.RequestException:
        return {"note": f"The FHIR server at {fhir_base} is not reachable, so the app shows "
                        "only its tokens."}
    out: dict[str, Any] = {"patient_status": pat.status_code,
                           "observations_status": obs.status_code}
    if pat.ok:
        resource = pat.json()
        name = (resource.get("name") or [{}])[0]
        out["patient_name"] = " ".join(name.get("given", []) + [name.get("family", "")])
        out["patient_birth_date"] = resource.get("birthDate", "")
    if obs.ok:
        out["observations"] = _observation_rows(obs.json())
    return out


def create_demo_app(*, issuer: str, fhir_base: str, client_id: str, base_url: str,
                    scope: str = STANDALONE_SCOPE, read_fhir: bool = True,
                    secret_key: str | None = None) -> Flask:
    """The demo app, served at ``base_url`` (its redirect URI is ``base_url + /callback``).

    ``issuer`` is the authorization server, ``fhir_base`` the FHIR server (the ``aud``),
    ``client_id`` the app's registration (see :mod:`authserver.cli.seed`).
    """
    issuer, fhir_base, base_url = issuer.rstrip("/"), fhir_base.rstrip("/"), base_url.rstrip("/")
    redirect_uri = base_url + CALLBACK_PATH
    discovery = _Discovery(issuer)
    app = Flask("authserver.demo.app", template_folder=str(data_dir("templates")),
                static_folder=None)
    app.config.update(
        SECRET_KEY=secret_key or secrets.token_urlsafe(32),
        # The authorization server shares the host (cookies ignore ports): a name of its own.
        SESSION_COOKIE_NAME="demo_app_session", SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=base_url.startswith("https://"),
    )

    def _page(name: str, status: int = 200, **context: Any) -> tuple[str, int]:
        return render_template(name, app_name=DEMO_APP_NAME, issuer=issuer,
                               fhir_base=fhir_base, **context), status

    def _authorize_form(extra_scope: str | None = None, launch: str | None = None
                        ) -> dict[str, Any]:
        verifier, challenge = _pkce()
        state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        _remember(state, verifier=verifier, nonce=nonce)
        params = {"response_type": "code", "client_id": client_id,
                  "redirect_uri": redirect_uri, "scope": extra_scope or scope,
                  "state": state, "aud": fhir_base, "code_challenge": challenge,
                  "code_challenge_method": "S256", "nonce": nonce}
        if launch:
            params["launch"] = launch
        return {"action": discovery.document()["authorization_endpoint"], "params": params}

    @app.get("/")
    def index() -> tuple[str, int]:
        try:
            form = _authorize_form()
        except (requests.RequestException, ValueError, KeyError):
            return _page("demo_app.html", 503, form=None,
                         problem=f"The authorization server at {issuer} is not answering.")
        return _page("demo_app.html", form=form, problem=None, scope=scope)

    @app.get(LAUNCH_PATH)
    def ehr_launch() -> Any:
        # SMART EHR launch: only an `iss` this app was configured for is ever contacted.
        iss = (request.args.get("iss") or "").rstrip("/")
        launch = request.args.get("launch") or ""
        if iss != fhir_base or not launch or len(launch) > 512:
            return _page("demo_app.html", 400, form=None,
                         problem="This launch names a FHIR server this app does not know.")
        try:
            form = _authorize_form(EHR_SCOPE, launch=launch)
        except (requests.RequestException, ValueError, KeyError):
            return _page("demo_app.html", 503, form=None,
                         problem=f"The authorization server at {issuer} is not answering.")
        # The EHR opened this page; carry on at once (the form submits itself).
        return _page("demo_app.html", form=form, problem=None, scope=EHR_SCOPE,
                     auto_submit=True)

    @app.get(CALLBACK_PATH)
    def callback() -> tuple[str, int]:
        args = request.args
        if args.get("iss") is not None and args.get("iss") != issuer:
            # RFC 9207 §2.4: a response naming another issuer is dropped (mix-up attack).
            return _page("demo_app_result.html", 400, error="wrong_issuer",
                         error_description="The response came from an unexpected server.")
        launch = _recall(args.get("state", ""))
        if launch is None:
            return _page("demo_app_result.html", 400, error="unknown_state",
                         error_description="This response does not belong to a launch "
                                           "started in this browser.")
        if args.get("error"):
            return _page("demo_app_result.html", 400, error=args.get("error"),
                         error_description=args.get("error_description", ""))
        try:
            resp = requests.post(discovery.document()["token_endpoint"], timeout=HTTP_TIMEOUT,
                                 data={"grant_type": GrantType.AUTHORIZATION_CODE.value,
                                       "code": args.get("code", ""),
                                       "redirect_uri": redirect_uri,
                                       "code_verifier": launch["verifier"],
                                       "client_id": client_id})
            token = resp.json()
        except (requests.RequestException, ValueError):
            return _page("demo_app_result.html", 502, error="token_request_failed",
                         error_description="The token endpoint did not answer with JSON.")
        if resp.status_code != 200 or "access_token" not in token:
            return _page("demo_app_result.html", 400, error=token.get("error", "error"),
                         error_description=token.get("error_description", ""))
        id_claims, id_problem = None, None
        if token.get("id_token"):
            try:
                id_claims = _verify_id_token(discovery, token["id_token"], client_id,
                                             launch["nonce"])
            except (TokenError, requests.RequestException, ValueError, KeyError) as exc:
                id_problem = f"The id_token did not verify ({exc.__class__.__name__})."
        fhir = _read_fhir(fhir_base, token) if read_fhir else {
            "note": "Reading the FHIR server is switched off."}
        return _page("demo_app_result.html", error=None, token=token,
                     token_json=json.dumps(token, indent=2),
                     id_claims_json=json.dumps(id_claims, indent=2) if id_claims else None,
                     id_problem=id_problem, fhir=fhir)

    @app.get("/logo.svg")
    def logo() -> Response:
        resp = Response(LOGO_SVG, content_type="image/svg+xml")
        resp.headers["Cache-Control"] = "public, max-age=86400"
        return resp

    @app.after_request
    def _headers(resp: Response) -> Response:
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Referrer-Policy", "no-referrer")  # no code in Referer
        if resp.content_type.startswith("text/html"):
            resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    return app

