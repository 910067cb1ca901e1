"""CORS on POST /token for browser apps: their registered origins only, with a working
OPTIONS preflight (SMART App Launch 2.2, "CORS"; Fetch standard CORS protocol
https://fetch.spec.whatwg.org/#http-cors-protocol)."""

from __future__ import annotations

import statistics

import requests

from tests.helpers import OAuthFlow, make_client, make_user

APP_ORIGIN = "https://growth-chart.example.org"
OTHER_ORIGIN = "https://other-app.example.org"


def _preflight(base_url: str, origin: str) -> requests.Response:
    return requests.options(base_url + "/token", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})


def test_cors_preflight_from_a_registered_origin_is_allowed(app, base_url):
    make_client(app, redirect_uris=[APP_ORIGIN + "/callback"])
    resp = _preflight(base_url, APP_ORIGIN)
    assert resp.status_code == 204
    assert resp.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    allowed = {h.strip().lower() for h in resp.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"content-type", "authorization"} <= allowed
    assert "Origin" in resp.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in resp.headers


def test_cors_preflight_from_an_unregistered_origin_is_not_allowed(app, base_url):
    make_client(app, redirect_uris=[APP_ORIGIN + "/callback"])
    for origin in (OTHER_ORIGIN, "null", APP_ORIGIN + ":8443", "http://growth-chart.example.org"):
        resp = _preflight(base_url, origin)
        assert "Access-Control-Allow-Origin" not in resp.headers, origin
        assert resp.status_code == 204


def test_cors_preflight_sees_an_app_registered_after_start(app, base_url):
    make_client(app, redirect_uris=[APP_ORIGIN + "/callback"])
    assert _preflight(base_url, APP_ORIGIN).headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    make_client(app, redirect_uris=[OTHER_ORIGIN + "/cb"])
    # At once: no cache to wait out.
    assert _preflight(base_url, OTHER_ORIGIN).headers.get(
        "Access-Control-Allow-Origin") == OTHER_ORIGIN


def test_cors_preflight_sees_a_dynamically_registered_app(app, base_url):
    from tests.flows.test_registration import GOOD, bearer, registration_token

    resp = requests.post(base_url + "/register", headers=bearer(registration_token(app)),
                         json={**GOOD, "redirect_uris": ["https://Dyn.Example:443/cb",
                                                         "https://dyn.example:8443/cb"]})
    assert resp.status_code == 201
    # Browsers send the origin serialized: lower-case host, no default port.
    for origin in ("https://dyn.example", "https://dyn.example:8443"):
        assert _preflight(base_url, origin).headers.get(
            "Access-Control-Allow-Origin") == origin, origin
    for origin in ("https://Dyn.Example:443", "https://dyn.example:443", "http://dyn.example"):
        assert "Access-Control-Allow-Origin" not in _preflight(base_url, origin).headers


def test_cors_preflight_refuses_a_disabled_or_deleted_apps_origin_at_once(app, base_url):
    from sqlalchemy import delete, func, select

    from authserver.extensions import db
    from authserver.models import Client, ClientOrigin
    from authserver.services import admin_console

    client = make_client(app, redirect_uris=[APP_ORIGIN + "/callback"])
    assert _preflight(base_url, APP_ORIGIN).headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    with app.app_context():
        admin_console.set_client_enabled(client["client_id"], False, by=0)
    assert "Access-Control-Allow-Origin" not in _preflight(base_url, APP_ORIGIN).headers
    with app.app_context():
        admin_console.set_client_enabled(client["client_id"], True, by=0)
    assert _preflight(base_url, APP_ORIGIN).headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    with app.app_context():
        db.session.execute(delete(Client).where(Client.client_id == client["client_id"]))
        db.session.commit()
        # ON DELETE CASCADE took its origins along.
        assert db.session.scalar(select(func.count()).select_from(ClientOrigin)) == 0
    assert "Access-Control-Allow-Origin" not in _preflight(base_url, APP_ORIGIN).headers


def _statements_of_one_preflight(app, base_url: str, origin: str) -> tuple[int, float]:
    import time

    from sqlalchemy import event

    from authserver.extensions import db

    seen: list[str] = []

    def count(conn, cursor, statement, *args):
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        start = time.perf_counter()
        resp = _preflight(base_url, origin)
        elapsed = time.perf_counter() - start
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert resp.headers.get("Access-Control-Allow-Origin") == origin
    return len(seen), elapsed


def _median_preflight(app, base_url: str, origin: str) -> tuple[int, float]:
    """(the statements of each preflight, when all five agree; their median time): one
    busy moment of a shared CPU does not make the measure."""
    runs = [_statements_of_one_preflight(app, base_url, origin) for _ in range(5)]
    counts = {n for n, _t in runs}
    assert len(counts) == 1, runs
    return counts.pop(), statistics.median(t for _n, t in runs)


def test_cors_preflight_cost_does_not_grow_with_junk_registrations(app, base_url):
    """The attack of issue 11: many junk registrations made every token preflight scan all
    apps' metadata. Now it is one indexed query, whatever their number."""
    from authserver.services.registration import register_client

    make_client(app, redirect_uris=[APP_ORIGIN + "/callback"])
    _preflight(base_url, APP_ORIGIN)  # warm up (connection pool, first-request work)
    before, t_before = _median_preflight(app, base_url, APP_ORIGIN)
    with app.app_context():
        for i in range(200):
            register_client({"client_name": f"junk {i}", "token_endpoint_auth_method": "none",
                             "redirect_uris": [f"https://junk{i}.example/cb{j}"
                                               for j in range(20)]})
    after, t_after = _median_preflight(app, base_url, APP_ORIGIN)
    assert before == after == 1
    assert t_after < max(10 * t_before, 0.25)  # generous: a scan of 200 apps took ~1.5 s


def test_cors_token_response_names_the_calling_clients_origin(app, base_url):
    make_user(app)
    client = make_client(app, redirect_uris=[APP_ORIGIN + "/callback"])
    make_client(app, name="Other", redirect_uris=[OTHER_ORIGIN + "/callback"])
    flow = OAuthFlow(base_url, client, requests.Session(),
                     redirect_uri=APP_ORIGIN + "/callback")
    flow.authorize()
    flow.follow()
    flow.login()
    flow.consent()
    code = flow.code()
    data = {"grant_type": "authorization_code", "code": code,
            "redirect_uri": flow.redirect_uri, "code_verifier": flow.verifier,
            "client_id": client["client_id"]}
    # Another registered app's origin cannot read this client's tokens.
    wrong = requests.post(base_url + "/token", data={**data, "code": "bogus"},
                          headers={"Origin": OTHER_ORIGIN})
    assert "Access-Control-Allow-Origin" not in wrong.headers
    resp = requests.post(base_url + "/token", data=data, headers={"Origin": APP_ORIGIN})
    assert resp.status_code == 200, resp.text
    assert resp.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert "Origin" in resp.headers["Vary"]
    # Errors are readable by the app too (so it can tell what went wrong).
    again = requests.post(base_url + "/token", data=data, headers={"Origin": APP_ORIGIN})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert again.headers["Access-Control-Allow-Origin"] == APP_ORIGIN


def test_cors_discovery_is_open_to_any_origin(base_url):
    for path in ("/.well-known/smart-configuration", "/.well-known/openid-configuration",
                 "/.well-known/jwks.json"):
        resp = requests.get(base_url + path, headers={"Origin": OTHER_ORIGIN})
        assert resp.headers["Access-Control-Allow-Origin"] == "*"


def test_cors_every_token_answer_names_the_clients_origin_errors_included(app, base_url):
    """A browser app reads why it was refused: the client is known from client_id, the
    HTTP Basic header, or the refresh token (fhirclient.js sends none of the first two)."""
    make_user(app)
    client = make_client(app, redirect_uris=[APP_ORIGIN + "/callback"])
    flow = OAuthFlow(base_url, client, requests.Session(),
                     redirect_uri=APP_ORIGIN + "/callback")
    first = flow.run()
    post = lambda data, origin=APP_ORIGIN, **kw: requests.post(  # noqa: E731
        base_url + "/token", data=data, headers={"Origin": origin}, **kw)
    refresh = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    ok = post(refresh)
    assert ok.status_code == 200 and ok.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    # The rotated token replayed: an error, still readable by the app.
    replay = post(refresh)
    assert replay.json()["error"] == "invalid_grant"
    assert replay.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    # Errors named by client_id, and by the Basic header.
    bad_grant = post({"grant_type": "password", "client_id": client["client_id"]})
    assert bad_grant.status_code == 400
    assert bad_grant.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    basic = post({"grant_type": "authorization_code", "code": "x"},
                 auth=(client["client_id"], "not-a-secret"))
    assert basic.status_code == 401
    assert basic.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    # Never another app's origin, never for a token nobody holds.
    assert "Access-Control-Allow-Origin" not in post(refresh, origin=OTHER_ORIGIN).headers
    unknown = post({"grant_type": "refresh_token", "refresh_token": "unknown"})
    assert unknown.status_code == 400 and "Access-Control-Allow-Origin" not in unknown.headers
