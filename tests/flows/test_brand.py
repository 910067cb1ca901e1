"""One brand on every page: the name and logo from AUTHSERVER_BRAND_NAME / _LOGO_URL, and
the STYLE_* colours and font the SMART style document serves, as /brand.css."""

from __future__ import annotations

import re

import pytest
import requests

from authserver.config import ConfigError, validate


@pytest.fixture
def live_config():
    return {"BRAND_NAME": "Riverside Health", "BRAND_LOGO_URL": "https://cdn.example.org/r.svg",
            "STYLE_COLOR_HIGHLIGHT": "#7a1fa2", "STYLE_COLOR_BACKGROUND": "#fafafa",
            "STYLE_COLOR_TEXT": "#202020", "STYLE_FONT_FAMILY": "Inter, sans-serif"}


def test_every_page_carries_the_brand_and_its_style_sheet(base_url):
    page = requests.get(base_url + "/login").text
    assert "<title>Sign in · Riverside Health</title>" in re.sub(r"\s+", " ", page)
    assert re.search(r'<span class="brand"><img src="https://cdn.example.org/r.svg" alt="" '
                     r'class="brand-logo" height="28">Riverside Health</span>', page)
    css_url = re.search(r'<link rel="stylesheet" href="(/brand.css\?v=\w+)">', page).group(1)
    css = requests.get(base_url + css_url)
    assert css.headers["Content-Type"].startswith("text/css")
    assert "--accent: #7a1fa2; --font: Inter, sans-serif;" in css.text
    assert "--bg: #fafafa; --fg: #202020;" in css.text  # the light scheme only
    assert "@media not (prefers-color-scheme: dark)" in css.text
    style = requests.get(base_url + "/smart-style.json").json()  # the same values
    assert style["color_highlight"] == "#7a1fa2"
    assert style["font_family_body"] == "Inter, sans-serif"


@pytest.mark.parametrize(("key", "value"), [
    ("BRAND_NAME", ""), ("BRAND_NAME", "bad\nname"),
    ("BRAND_LOGO_URL", "http://cdn.example.org/r.svg"),
    ("BRAND_LOGO_URL", '/static/x.svg" onerror="x'), ("BRAND_LOGO_URL", "//evil.example/x"),
    ("STYLE_COLOR_HIGHLIGHT", "red; } body { display: none"),
    ("STYLE_FONT_FAMILY", "x; } * { color: red"),
])
def test_a_brand_setting_that_could_break_a_page_is_refused_by_name(key, value):
    from authserver.config import DEFAULTS

    conf = {**DEFAULTS, "ISSUER": "http://127.0.0.1:8000", "FHIR_BASE_URLS": [],
            "DATABASE_URL": "sqlite:///x.db", key: value}
    with pytest.raises(ConfigError, match=key):
        validate(conf)
