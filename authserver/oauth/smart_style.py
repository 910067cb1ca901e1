"""The SMART style document and its versioned URL (``smart_style_url`` launch context).

https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html#styling
"""

from __future__ import annotations

import hashlib
import json

from flask import current_app

__all__ = ["STYLE_PATH", "smart_style", "smart_style_url"]

#: Where the SMART style document is served (``smart_style_url``).
STYLE_PATH = "/smart-style.json"


def smart_style() -> dict[str, str]:
    """The SMART style document, from the ``STYLE_*`` settings.

    https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html#styling
    """
    conf = current_app.config
    return {
        "color_background": conf["STYLE_COLOR_BACKGROUND"],
        "color_highlight": conf["STYLE_COLOR_HIGHLIGHT"],
        "color_text": conf["STYLE_COLOR_TEXT"],
        "font_family_body": conf["STYLE_FONT_FAMILY"],
        "font_family_heading": conf["STYLE_FONT_FAMILY"],
    }


def smart_style_url() -> str:
    """Absolute URL of :func:`smart_style`, versioned by its content. SMART: "EHRs SHALL
    return a new URL value in the smart_style_url launch context parameter if the contents
    of this JSON is changed" — so the URL carries a digest of the document."""
    body = json.dumps(smart_style(), sort_keys=True, separators=(",", ":")).encode()
    version = hashlib.sha256(body).hexdigest()[:12]
    return f"{current_app.config['ISSUER']}{STYLE_PATH}?v={version}"
