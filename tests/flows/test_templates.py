"""Every template renders (with the variables its view passes) and ships with the package."""

from __future__ import annotations

from pathlib import Path

import pytest

from authserver.paths import data_dir


class _Client:
    client_id = "c1"
    client_name = "Example App"
    client_metadata: dict = {}


TEMPLATES = sorted(p.name for p in data_dir("templates").glob("*.html"))


def test_templates_folder_is_top_level():
    assert data_dir("templates") == Path(__file__).resolve().parents[2] / "templates" or (
        "_data" in str(data_dir("templates")))


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_renders(app, name):
    from jinja2 import Undefined

    app.jinja_env.undefined = Undefined  # views pass their own variables; here only syntax
    with app.test_request_context("/"):
        from flask import render_template

        html = render_template(name, title="t", message="m", items=[], groups={},
                               patients=[], client=_Client(), req="r", next="/", error=None,
                               qr="<svg></svg>", secret="S", q="", birth_date="",
                               describe=str, form={}, apps=[], users=[], events=[],
                               step=None, sections=[], links={},
                               created=None, user=None, invitations=[], invited=None,
                               policies={"roles": {"clinician": {
                                   "default": "user/*.cruds", "policy": None}}, "users": {}})
    # A whole page came out (every template is a page), with nothing left unrendered.
    assert html.lower().lstrip().startswith("<!doctype html>") and "</html>" in html
    assert "{{" not in html and "{%" not in html
