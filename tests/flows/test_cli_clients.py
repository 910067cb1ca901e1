"""`authserver client ...` as an operator uses it, against a live server's database: list
and show, disable and enable, rotate-secret (with a grace period, moved through with
`clock.shifted`) and delete, each printing one JSON object or one error line."""

from __future__ import annotations

import json

import pytest
import requests

from tests.flows.test_cli import fails, ok_json, run
from tests.flows.test_cli_users import on
from tests.helpers import OAuthFlow, add_patients, make_client, make_user


def _backend(app, name: str = "Nightly export") -> dict:
    """A client_credentials client with a secret (client_secret_basic)."""
    return make_client(app, name=name, scope="system/*.rs", auth_method="client_secret_basic",
                       grant_types=["client_credentials"], redirect_uris=[])


def _cc(base_url: str, client_id: str, secret: str) -> requests.Response:
    return requests.post(base_url + "/token", auth=(client_id, secret),
                         data={"grant_type": "client_credentials", "scope": "system/*.rs"})


@pytest.fixture
def granted(app, base_url):
    """alice's refresh token of a public app."""
    make_user(app)
    add_patients(app, ("p1", "Example, Alice", None))
    client = make_client(app)
    flow = OAuthFlow(base_url, client)
    return {"flow": flow, "token": flow.run(), "client": client}


# ---- list and show ------------------------------------------------------------------

def test_list_pages_by_id_and_filters_by_kind(app):
    inst = on(app)
    made = [make_client(app, name=f"App {i}")["client_id"] for i in range(5)]
    rs = ok_json(run(inst, "resource-server", "create", "--name", "FHIR"))
    seen, after = [], None
    while True:
        args = ["client", "list", "--kind", "app", "--limit", "2"]
        body = ok_json(run(inst, *args, *(["--after", str(after)] if after else [])))
        seen += [c["client_id"] for c in body["clients"]]
        assert {c["kind"] for c in body["clients"]} == {"app"}
        if body["next"] is None:
            break
        after = body["next"]
    assert seen == made  # in id order, each once
    rows = ok_json(run(inst, "client", "list", "--kind", "resource_server"))["clients"]
    assert [c["client_id"] for c in rows] == [rs["client_id"]]
    assert ok_json(run(inst, "client", "list", "--limit", "500"))["next"] is None
    fails(run(inst, "client", "list", "--limit", "501"), "--limit")


def test_show_has_metadata_and_state_but_no_secret(app):
    from authserver.services import admin_console

    inst = on(app)
    c = _backend(app)
    body = ok_json(run(inst, "client", "show", c["client_id"]))
    assert body["state"] == "active" and body["has_secret"] is True
    assert body["metadata"]["grant_types"] == ["client_credentials"]
    text = json.dumps(body)
    assert c["client_secret"] not in text and "sha256" not in text and "hash" not in text
    with app.app_context():  # a developer's backend service waits for approval
        pending = admin_console.create_client(
            name="Pending", redirect_uris=[], scope="system/*.rs",
            auth_method="client_secret_basic", grant_types=["client_credentials"],
            verified=False)["client_id"]
        admin_console.set_client_enabled(pending, False, by=None)
    assert ok_json(run(inst, "client", "show", pending))["state"] == "awaiting approval"
    assert ok_json(run(inst, "client", "enable", pending))["state"] == "active"
    assert ok_json(run(inst, "client", "disable", pending))["state"] == "disabled"
    fails(run(inst, "client", "show", "no-such-client"), "no client 'no-such-client'")


def test_disable_revokes_its_grants_and_enable_brings_none_back(app, granted):
    inst = on(app)
    cid = granted["client"]["client_id"]
    assert ok_json(run(inst, "client", "disable", cid)) == {"client_id": cid,
                                                           "state": "disabled"}
    flow, token = granted["flow"], granted["token"]
    assert flow.refresh(token["refresh_token"]).json()["error"] == "invalid_client"
    ok_json(run(inst, "client", "enable", cid))
    resp = flow.refresh(token["refresh_token"])
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"


# ---- rotate-secret ------------------------------------------------------------------

def test_rotated_secret_old_works_within_grace_and_not_after(app, base_url):
    from authserver import clock

    inst = on(app)
    c = _backend(app)
    old = c["client_secret"]
    body = ok_json(run(inst, "client", "rotate-secret", c["client_id"], "--grace", "600"))
    new = body["client_secret"]
    assert new != old and len(new) >= 43 and body["previous_secret_until"]
    assert _cc(base_url, c["client_id"], new).status_code == 200
    assert _cc(base_url, c["client_id"], old).status_code == 200  # within the grace period
    shown = ok_json(run(inst, "client", "show", c["client_id"]))
    assert shown["previous_secret_until"] == body["previous_secret_until"]
    assert "_previous_secret" not in shown["metadata"] and new not in json.dumps(shown)
    with clock.shifted(601):
        resp = _cc(base_url, c["client_id"], old)
        assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"
        assert _cc(base_url, c["client_id"], new).status_code == 200
        assert ok_json(run(inst, "client", "show", c["client_id"]))[
            "previous_secret_until"] is None


def test_rotate_without_grace_ends_the_old_secret_at_once(app, base_url):
    inst = on(app)
    c = _backend(app)
    body = ok_json(run(inst, "client", "rotate-secret", c["client_id"]))
    assert body["previous_secret_until"] is None
    assert _cc(base_url, c["client_id"], c["client_secret"]).status_code == 401
    assert _cc(base_url, c["client_id"], body["client_secret"]).status_code == 200
    again = ok_json(run(inst, "client", "rotate-secret", c["client_id"], "--grace", "60"))
    third = ok_json(run(inst, "client", "rotate-secret", c["client_id"], "--grace", "60"))
    # Only one previous secret is kept: the one before it stops at the next rotation.
    assert _cc(base_url, c["client_id"], body["client_secret"]).status_code == 401
    assert _cc(base_url, c["client_id"], again["client_secret"]).status_code == 200
    assert _cc(base_url, c["client_id"], third["client_secret"]).status_code == 200


def test_rotate_refuses_clients_without_a_secret_and_bad_grace(app):
    inst = on(app)
    public = make_client(app)
    fails(run(inst, "client", "rotate-secret", public["client_id"]), "has no secret")
    c = _backend(app)
    fails(run(inst, "client", "rotate-secret", c["client_id"], "--grace", "-1"), "--grace")
    fails(run(inst, "client", "rotate-secret", "nope"), "no client 'nope'")


# ---- delete --------------------------------------------------------------------------

def test_deleted_clients_refresh_token_is_refused(app, granted):
    inst = on(app)
    cid = granted["client"]["client_id"]
    body = ok_json(run(inst, "client", "delete", cid))
    assert body == {"client_id": cid, "deleted": True, "grants_revoked": 1,
                    "consents_revoked": 1}
    resp = granted["flow"].refresh(granted["token"]["refresh_token"])
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_client"
    intro = requests.post(granted["flow"].base_url + "/introspect",
                          data={"token": granted["token"]["access_token"]},
                          auth=_introspector(app))
    assert intro.json() == {"active": False}
    fails(run(inst, "client", "delete", cid), f"no client '{cid}'")
    assert cid not in {c["client_id"] for c in ok_json(run(inst, "client", "list"))["clients"]}


def _introspector(app) -> tuple[str, str]:
    from authserver.services import admin_console

    with app.app_context():
        rs = admin_console.create_resource_server("Introspector")
    return rs["client_id"], rs["client_secret"]
