"""POST /revoke: RFC 7009 token revocation, over real HTTP.

https://www.rfc-editor.org/rfc/rfc7009
"""

from __future__ import annotations

import pytest
import requests

from tests.flows.test_introspection import INACTIVE, introspect, resource_server
from tests.helpers import OAuthFlow, make_client, make_user, sign_out


def revoke(base_url: str, token: str, client: dict, **extra) -> requests.Response:
    data = {"token": token, **extra}
    auth = None
    if client.get("client_secret"):
        auth = (client["client_id"], client["client_secret"])
    else:
        data["client_id"] = client["client_id"]
    return requests.post(base_url + "/revoke", data=data, auth=auth)


@pytest.fixture
def launched(app, base_url, http) -> dict:
    make_user(app)
    client = make_client(app)
    flow = OAuthFlow(base_url, client, http)
    return {"token": flow.run(), "client": client, "flow": flow, "rs": resource_server(app)}


def _active(base_url: str, launched: dict, token: str) -> bool:
    resp = introspect(base_url, token, auth=launched["rs"])
    assert resp.status_code == 200
    return resp.json()["active"]


def test_revoke_access_token_makes_it_inactive_at_once(launched, base_url):
    token = launched["token"]
    resp = revoke(base_url, token["access_token"], launched["client"],
                  token_type_hint="access_token")
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    assert not _active(base_url, launched, token["access_token"])
    # Revoking one access token leaves the rest of the grant alone (RFC 7009 §2.1: MAY).
    assert _active(base_url, launched, token["refresh_token"])
    assert launched["flow"].refresh(token["refresh_token"]).status_code == 200


def test_revoke_refresh_token_ends_the_grant(launched, base_url):
    token = launched["token"]
    flow = launched["flow"]
    newer = flow.refresh(token["refresh_token"]).json()
    resp = revoke(base_url, newer["refresh_token"], launched["client"],
                  token_type_hint="refresh_token")
    assert resp.status_code == 200
    # RFC 7009 §2.1: the access tokens of the same grant are revoked too.
    for value in (token["access_token"], newer["access_token"], newer["refresh_token"]):
        assert not _active(base_url, launched, value)
    resp = flow.refresh(newer["refresh_token"])
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_grant"


def test_revoke_with_wrong_hint_still_revokes(launched, base_url):
    token = launched["token"]["access_token"]
    assert revoke(base_url, token, launched["client"],
                  token_type_hint="refresh_token").status_code == 200
    assert not _active(base_url, launched, token)
    refresh = launched["token"]["refresh_token"]
    assert revoke(base_url, refresh, launched["client"],
                  token_type_hint="bogus").status_code == 200
    assert not _active(base_url, launched, refresh)


@pytest.mark.parametrize("token", ["unknown", "a.b.c", "x" * 600, "é"])
def test_revoke_unknown_token_answers_200(launched, base_url, token):
    resp = revoke(base_url, token, launched["client"])
    assert resp.status_code == 200
    assert resp.json() == {}


def test_revoke_expired_access_token_answers_200(launched, app, base_url):
    from tests.flows.test_introspection import _claims, sign

    token = sign(app, _claims(base_url, exp=1, client_id=launched["client"]["client_id"]))
    assert revoke(base_url, token, launched["client"]).status_code == 200


def test_revoke_another_clients_token_is_refused(launched, app, base_url):
    other = make_client(app, name="Other")
    resp = revoke(base_url, launched["token"]["access_token"], other)
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_grant"
    assert _active(base_url, launched, launched["token"]["access_token"])


def test_revoke_without_client_authentication_is_401(launched, base_url):
    resp = requests.post(base_url + "/revoke", data={"token": launched["token"]["access_token"]})
    assert resp.status_code == 401
    assert resp.json()["error"] == "invalid_client"
    assert _active(base_url, launched, launched["token"]["access_token"])


def test_revoke_with_wrong_secret_is_401(app, base_url):
    make_user(app)
    client = make_client(app, auth_method="client_secret_basic")
    token = OAuthFlow(base_url, client, requests.Session()).run()
    resp = revoke(base_url, token["access_token"], {**client, "client_secret": "wrong"})
    assert resp.status_code == 401
    assert resp.json()["error"] == "invalid_client"
    assert revoke(base_url, token["access_token"], client).status_code == 200


def test_revoke_resource_server_cannot_revoke(launched, base_url):
    resp = requests.post(base_url + "/revoke", auth=launched["rs"],
                         data={"token": launched["token"]["access_token"]})
    assert resp.status_code == 401
    assert resp.json()["error"] == "invalid_client"


def test_revoke_missing_token_is_invalid_request(launched, base_url):
    resp = requests.post(base_url + "/revoke",
                         data={"client_id": launched["client"]["client_id"]})
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_request"


def test_revoke_client_credentials_token(app, base_url):
    c = make_client(app, auth_method="client_secret_basic", scope="system/*.rs",
                    grant_types=["client_credentials"], redirect_uris=[])
    token = requests.post(base_url + "/token", auth=(c["client_id"], c["client_secret"]), data={
        "grant_type": "client_credentials", "scope": "system/*.rs"}).json()["access_token"]
    rs = resource_server(app)
    assert introspect(base_url, token, auth=rs).json()["active"] is True
    assert revoke(base_url, token, c).status_code == 200
    assert introspect(base_url, token, auth=rs).json() == INACTIVE


def test_revocation_audit_row_holds_no_token(launched, app, base_url):
    from authserver.extensions import db
    from authserver.models import AuditEvent

    token = launched["token"]
    revoke(base_url, token["refresh_token"], launched["client"])
    with app.app_context():
        rows = db.session.scalars(db.select(AuditEvent).where(
            AuditEvent.event == "token.revoked")).all()
        assert [r.detail for r in rows] == [{"kind": "refresh_token"}]
        dump = repr([(r.detail, r.client_id) for r in db.session.scalars(
            db.select(AuditEvent)).all()])
    assert token["refresh_token"] not in dump and token["access_token"] not in dump


def test_revoke_answers_cors_for_registered_origin(launched, base_url):
    origin = "http://127.0.0.1:9999"
    pre = requests.options(base_url + "/revoke", headers={"Origin": origin})
    assert pre.status_code == 204
    assert pre.headers["Access-Control-Allow-Origin"] == origin
    resp = requests.post(base_url + "/revoke", headers={"Origin": origin}, data={
        "token": "unknown", "client_id": launched["client"]["client_id"]})
    assert resp.headers["Access-Control-Allow-Origin"] == origin


def test_sign_out_ends_online_access_tokens(app, base_url, http):
    make_user(app)
    scope = "openid launch/patient online_access patient/*.rs"
    client = make_client(app, scope=scope)
    flow = OAuthFlow(base_url, client, http, scope=scope)
    token = flow.run()
    rs = resource_server(app)
    assert introspect(base_url, token["access_token"], auth=rs).json()["active"] is True
    assert introspect(base_url, token["refresh_token"], auth=rs).json()["active"] is True
    assert sign_out(base_url, http).status_code == 303
    assert introspect(base_url, token["access_token"], auth=rs).json() == INACTIVE
    assert introspect(base_url, token["refresh_token"], auth=rs).json() == INACTIVE


def test_client_id_with_nul_is_refused_not_a_server_error(launched, base_url):
    # PostgreSQL refuses NUL in text parameters: the lookup must not reach it.
    # RFC 6749 §5.2: 401 when credentials came in the Authorization header; a form
    # client_id may get 400 (/revoke, Authlib) -- /introspect always answers 401.
    for path, form_status in (("/revoke", 400), ("/introspect", 401)):
        resp = requests.post(base_url + path, data={
            "token": "x", "client_id": "a\x00b", "client_secret": "s"})
        assert resp.status_code == form_status, path
        assert resp.json()["error"] == "invalid_client"
        resp = requests.post(base_url + path, data={"token": "x"}, auth=("a\x00b", "s"))
        assert resp.status_code == 401, path


def test_revoke_with_unreadable_basic_credentials_is_401(launched, base_url):
    import base64

    for raw in (b"\xff\xfe:\xfd", b"caf\xe9:x", b"no-colon"):
        resp = requests.post(base_url + "/revoke", data={
            "token": launched["token"]["access_token"]},
            headers={"Authorization": "Basic " + base64.b64encode(raw).decode()})
        assert resp.status_code == 401, raw
        assert resp.json()["error"] == "invalid_client"
    assert _active(base_url, launched, launched["token"]["access_token"])


def test_revoke_with_two_authentication_methods_is_invalid_request(app, base_url):
    make_user(app)
    client = make_client(app, auth_method="client_secret_basic")
    token = OAuthFlow(base_url, client, requests.Session()).run()
    basic = (client["client_id"], client["client_secret"])
    for data in ({"client_secret": client["client_secret"]},
                 {"client_id": "another-client"},
                 {"client_assertion": "a.b.c"}):
        resp = requests.post(base_url + "/revoke", auth=basic,
                             data={"token": token["access_token"], **data})
        assert resp.status_code == 400, data
        assert resp.json()["error"] == "invalid_request"
    rs = resource_server(app)
    assert introspect(base_url, token["access_token"], auth=rs).json()["active"] is True
