"""GET /smart-style.json: the SMART style document that EHR launches point to.

SMART App Launch 2.2, "SMART App Styling"
(https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html#styling): the URL in
``smart_style_url`` "SHOULD serve a 'SMART Style' JSON object". Colours and fonts come from
the ``STYLE_*`` settings; the URL handed out carries a digest of the content (``?v=``), so a
changed style gets a new URL as the spec requires, while this path stays the same.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from authserver.oauth.smart_style import STYLE_PATH, smart_style

bp = Blueprint("style", __name__)


@bp.get(STYLE_PATH)
def smart_style_document() -> Response:
    resp = jsonify(smart_style())
    # Apps fetch it from the browser: any origin may read it (it holds no secret).
    resp.headers["Access-Control-Allow-Origin"] = "*"
    resp.headers["Cache-Control"] = "public, max-age=3600"
    return resp
