"""GET /smart-style.json: the SMART style document that EHR launches point to; and
GET /brand.css, the same colours and font for the server's own pages.

SMART App Launch 2.2, "SMART App Styling"
(https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html#styling): the URL in
``smart_style_url`` "SHOULD serve a 'SMART Style' JSON object". Colours and fonts come from
the ``STYLE_*`` settings; the URL handed out carries a digest of the content (``?v=``), so a
changed style gets a new URL as the spec requires, while this path stays the same.
"""

from __future__ import annotations

import hashlib
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, url_for

from authserver.oauth.smart_style import STYLE_PATH, smart_style

bp = Blueprint("style", __name__)


@bp.get(STYLE_PATH)
def smart_style_document() -> Response:
    resp = jsonify(smart_style())
    # Apps fetch it from the browser: any origin may read it (it holds no secret).
    resp.headers["Access-Control-Allow-Origin"] = "*"
    resp.headers["Cache-Control"] = "public, max-age=3600"
    return resp


#: The brand's colours and font over static/style.css's defaults: the highlight always, the
#: background and text only in the light scheme (the dark scheme keeps its own, readable).
_BRAND_CSS = """:root {{ --accent: {color_highlight}; --font: {font_family_body}; }}
@media not (prefers-color-scheme: dark) {{
  :root {{ --bg: {color_background}; --fg: {color_text}; }}
}}
"""


def _brand_css() -> str:
    return _BRAND_CSS.format(**smart_style())  # validated by config._check_brand


@bp.get("/brand.css")
def brand_css() -> Response:
    # Versioned by content (?v=), so it may be cached for long.
    return Response(_brand_css(), mimetype="text/css",
                    headers={"Cache-Control": "public, max-age=86400"})


@bp.app_context_processor
def _brand() -> dict[str, Any]:
    conf = current_app.config
    version = hashlib.sha256(_brand_css().encode()).hexdigest()[:12]
    return {"brand": {"name": conf["BRAND_NAME"], "logo": conf["BRAND_LOGO_URL"] or None,
                      "css": url_for("style.brand_css", v=version)}}
