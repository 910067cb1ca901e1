"""Behind a TLS-terminating proxy (AUTHSERVER_TRUST_PROXY) and without one."""

from __future__ import annotations

import pytest

from tests.conftest import base_config


@pytest.fixture
def https_app(template_db, tmp_path):
    from authserver.app import create_app
    from tests.conftest import _fresh_db

    conf = base_config(tmp_path / "inst", _fresh_db(template_db, tmp_path),
                       issuer="https://auth.example.org")
    conf["TRUST_PROXY"] = 1
    app = create_app(conf)
    yield app
    with app.app_context():
        from authserver.extensions import db

        db.session.remove()
        db.engine.dispose()


def test_forwarded_https_reaches_oauth_endpoints(https_app):
    client = https_app.test_client()
    resp = client.post("/token", data={"grant_type": "authorization_code"},
                       headers={"X-Forwarded-Proto": "https", "Host": "auth.example.org"})
    # No client at all: 401, which RFC 6749 §5.2 allows (MAY) beside the header case.
    assert resp.status_code == 401
    assert resp.json["error"] in ("invalid_client", "invalid_request")
    assert resp.headers["Cache-Control"] == "no-store"


def test_plain_http_from_a_remote_host_is_refused_not_500(https_app):
    client = https_app.test_client()
    resp = client.post("/token", data={"grant_type": "authorization_code"},
                       headers={"Host": "auth.example.org"})
    assert resp.status_code == 400
    assert resp.json == {"error": "invalid_request", "error_description": "OAuth 2 requires https"}
