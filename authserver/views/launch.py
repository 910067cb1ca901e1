"""POST /launch: an EHR creates a SMART EHR-launch context and gets its opaque ``launch`` value.

SMART App Launch 2.2, EHR launch (https://hl7.org/fhir/smart-app-launch/app-launch.html#launch-app-ehr-launch):
the EHR opens the app with ``iss`` and ``launch``; the app passes ``launch`` back to
/authorize. How the EHR makes the value is not standardized; here it is this endpoint.

- The caller is an app client authenticated with its secret (``client_secret_basic`` or
  ``client_secret_post``, whichever it registered) and given the launch permission
  (``can_launch``, ``authserver client create --can-launch``).
- Without or with bad credentials: 401 ``invalid_client`` (RFC 6749 §5.2: "If the client
  attempted to authenticate via the Authorization request header field, the authorization
  server MUST respond with an HTTP 401"; we answer 401 for every failed authentication).
- Authenticated but without the permission: 403 ``unauthorized_client`` (RFC 6749 §5.2:
  "The authenticated client is not authorized to use this ..."). Not ``access_denied``: that
  code means the resource owner refused at /authorize; here nobody refused, the client
  simply lacks the permission.
- Body: JSON object, or form fields (``fhirContext`` then a JSON string,
  ``need_patient_banner`` ``true``/``false``). ``client_id`` (REQUIRED; ``app_client_id`` in
  a form body) names the app the launch is for: only that app can redeem it at /authorize.
  A ``user`` that does not exist gets the same answer as one that does (the launch is then
  unusable), so the endpoint cannot be used to find accounts. Answer 201
  ``{"launch", "iss", "expires_in"}`` with ``Cache-Control: no-store`` (the value is a
  bearer credential for the launch).
"""

from __future__ import annotations

import json
from typing import Any

from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidRequestError
from flask import Blueprint, Response, request

from authserver.extensions import csrf
from authserver.oauth import server as oauth_server
from authserver.services import admin_console, launches
from authserver.smart.client_types import SECRET_METHODS
from authserver.web import no_store_json

bp = Blueprint("launch", __name__)

#: Body members accepted; anything else is ignored.
FIELDS = ("patient", "encounter", "fhirContext", "intent", "need_patient_banner",
          "smart_style_url", "tenant", "user", "aud", "client_id")
#: The app a launch is for: ``client_id`` in a JSON body. In a form body ``client_id`` is
#: the caller's own credential (RFC 6749 §2.3.1 client_secret_post), so there the app is
#: named ``app_client_id`` (or, without it, the launch is for the caller itself).
FORM_APP_FIELD = "app_client_id"
#: The secret methods, as an ordered list of plain strings (Authlib formats it into an error).
_AUTH_METHODS = sorted(m.value for m in SECRET_METHODS)
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no", "")


class LaunchRequestError(Exception):
    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


def _error(status: int, error: str, description: str, **headers: str) -> Response:
    return no_store_json({"error": error, "error_description": description}, status, headers)


def _form_body() -> dict[str, Any]:
    body: dict[str, Any] = {}
    for key in (*FIELDS, FORM_APP_FIELD):
        values = request.form.getlist(key)
        if len(values) > 1:
            raise LaunchRequestError(f"Multiple '{key}' in request")
        if values:
            body[key] = values[0]
    if "fhirContext" in body:
        try:
            body["fhirContext"] = json.loads(body["fhirContext"])
        except (ValueError, RecursionError):
            raise LaunchRequestError("'fhirContext' must be a JSON array") from None
    if "need_patient_banner" in body:
        flag = body["need_patient_banner"].strip().lower()
        if flag not in _TRUE + _FALSE:
            raise LaunchRequestError("'need_patient_banner' must be true or false")
        body["need_patient_banner"] = flag in _TRUE
    if FORM_APP_FIELD in body:
        body["client_id"] = body.pop(FORM_APP_FIELD)
    return body


def parse_body() -> dict[str, Any]:
    """The launch parameters of a JSON or form body (raises :class:`LaunchRequestError`)."""
    if request.is_json:
        try:
            data = request.get_json(silent=True)
        except RecursionError:  # JSON nested too deeply for the parser: bad input, not a 500
            data = None
        if not isinstance(data, dict):
            raise LaunchRequestError("The body must be a JSON object")
        body = {k: data[k] for k in FIELDS if k in data and data[k] is not None}
    elif request.mimetype == "application/x-www-form-urlencoded":
        body = _form_body()
    else:
        raise LaunchRequestError("Send application/json or application/x-www-form-urlencoded")
    if "patient" not in body:
        raise LaunchRequestError("Missing 'patient'")
    if "client_id" not in body:
        raise LaunchRequestError("Missing 'client_id': name the app this launch is for")
    return body


def authenticate_launcher() -> Any:
    """The authenticated client (raises InvalidClientError)."""
    req = oauth_server.current().create_oauth2_request(request)
    try:
        return oauth_server.current().authenticate_client(req, _AUTH_METHODS,
                                                          endpoint="launch")
    except ValueError:  # e.g. Basic credentials that are not UTF-8 (Authlib does not catch it)
        raise InvalidClientError(status_code=401) from None


@bp.route("/launch", methods=["POST"])
@csrf.exempt  # called by an EHR's back end, authenticated by its client secret
def create_launch() -> Response:
    try:
        client = authenticate_launcher()
    except InvalidClientError:
        return _error(401, "invalid_client", "Client authentication failed",
                      **{"WWW-Authenticate": 'Basic realm="launch"'})
    except InvalidRequestError as exc:  # RFC 6749 §2.3: more than one method
        return _error(400, "invalid_request", exc.description)
    if not client.row.can_launch:
        return _error(403, "unauthorized_client", "This client may not create launch contexts")
    try:
        p = parse_body()
        made = launches.create_launch(
            patient=p["patient"], encounter=p.get("encounter"), fhir_context=p.get("fhirContext"),
            need_patient_banner=p.get("need_patient_banner", False), intent=p.get("intent"),
            smart_style_url=p.get("smart_style_url"), tenant=p.get("tenant"),
            username=p.get("user"), aud=p.get("aud"), client_id=p["client_id"],
            created_by=client.client_id)
    except (LaunchRequestError, admin_console.AdminError) as exc:
        return _error(400, "invalid_request", str(exc))
    return no_store_json(made, 201)
