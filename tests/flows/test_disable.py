"""Disabling takes effect at once (issue 11, point 5).

An administrator who disables a user or an app expects every token of it to stop working
on the very next request: at /introspect, at a resource server in introspection mode, and
at /token for refresh — not when the access token expires.
"""

from __future__ import annotations

import requests

from tests.flows.test_fhir_demo import (
    fhir_server,  # noqa: F401  (fixture)
    get,
)
from tests.flows.test_introspection import INACTIVE, introspect, resource_server
from tests.helpers import OAuthFlow, make_client, make_user


def _disable_user(app, username: str) -> None:
    from authserver import store
    from authserver.services import admin_console
    with app.app_context():
        user = store.accounts.get_user_by_username(username)
        assert admin_console.set_user_enabled(user.id, False, by=0)


def _disable_client(app, client_id: str) -> None:
    from authserver.services import admin_console

    with app.app_context():
        assert admin_console.set_client_enabled(client_id, False, by=0)


def test_disabling_a_user_makes_their_tokens_inactive_at_once(app, base_url, fhir_server):  # noqa: F811
    make_user(app)
    client = make_client(app)
    flow = OAuthFlow(base_url, client, requests.Session())
    token = flow.run()
    rs = resource_server(app)
    assert introspect(base_url, token["access_token"], auth=rs).json()["active"] is True
    checked = fhir_server(introspection={"client_id": rs[0], "client_secret": rs[1]})
    assert get(f"{checked}/Patient/p1", token["access_token"]).status_code == 200

    _disable_user(app, "alice")

    assert introspect(base_url, token["access_token"], auth=rs).json() == INACTIVE
    assert introspect(base_url, token["refresh_token"], auth=rs).json() == INACTIVE
    assert get(f"{checked}/Patient/p1", token["access_token"]).status_code == 401
    refreshed = flow.refresh(token["refresh_token"])
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
    userinfo = requests.get(base_url + "/userinfo",
                            headers={"Authorization": f"Bearer {token['access_token']}"})
    assert userinfo.status_code == 401


def test_disabling_an_app_makes_its_tokens_inactive_at_once(app, base_url):
    make_user(app)
    client = make_client(app)
    flow = OAuthFlow(base_url, client, requests.Session())
    token = flow.run()
    rs = resource_server(app)
    _disable_client(app, client["client_id"])
    assert introspect(base_url, token["access_token"], auth=rs).json() == INACTIVE
    assert introspect(base_url, token["refresh_token"], auth=rs).json() == INACTIVE
    refreshed = flow.refresh(token["refresh_token"])
    assert refreshed.status_code == 400  # RFC 6749 §5.2: no Authorization header
    assert refreshed.json()["error"] in ("invalid_client", "invalid_grant")


def test_disabling_a_backend_service_makes_its_token_inactive_at_once(app, base_url):
    service = make_client(app, scope="system/*.rs", grant_types=["client_credentials"],
                          auth_method="client_secret_basic")
    resp = requests.post(base_url + "/token", data={
        "grant_type": "client_credentials", "scope": "system/*.rs"},
        auth=(service["client_id"], service["client_secret"]))
    token = resp.json()["access_token"]
    rs = resource_server(app)
    assert introspect(base_url, token, auth=rs).json()["active"] is True
    _disable_client(app, service["client_id"])
    assert introspect(base_url, token, auth=rs).json() == INACTIVE
